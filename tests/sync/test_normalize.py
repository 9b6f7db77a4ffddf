"""Matching keys for names and document numbers, shared by the server and devices."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.normalize import document_key, fold, name_key, name_tokens, search_keys


@given(st.text())
def test_folding_twice_changes_nothing(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@given(st.text())
def test_a_document_key_is_its_own_key(text: str) -> None:
    assert document_key(document_key(text)) == document_key(text)


@settings(deadline=None)  # the first call loads the pinyin dictionary
@given(st.text(alphabet="张伟李娜王芳刘洋陈静 abcdefghOolxyzАБВГДЕЖЗИЙКЛМНОабвгдежзийклмноіїєґ"))
def test_name_keys_ignore_word_order(text: str) -> None:
    assert name_key(" ".join(reversed(text.split()))) == name_key(text)


def test_document_numbers_lose_separators_case_and_the_letter_o() -> None:
    assert document_key("ab 12-34 o5") == "AB123405"
    assert document_key("ab-123 o45") == document_key("AB123045") == "AB123045"
    assert document_key("Ｅ１２３．４５６／７") == "E1234567"  # full-width digits and marks
    assert document_key("E 123\u2013456") == "E123456"  # an en dash


def test_fold_removes_case_diacritics_and_extra_spaces() -> None:
    assert fold("  José   MÜLLER ") == "jose muller"
    assert fold("ＡＢＣ") == "abc"


def test_chinese_characters_become_toneless_pinyin() -> None:
    assert name_tokens("张伟") == ["zhang", "wei"]
    assert name_tokens("张小明") == ["zhang", "xiao", "ming", "xiaoming"]
    assert name_tokens("曾小明")[0] == "zeng"  # the surname reading, not pypinyin's default


def test_chinese_and_pinyin_names_share_a_key_in_any_order_and_case() -> None:
    keys = {name_key(n) for n in ("张伟", "Zhang Wei", "WEI Zhang", "wei ZHANG", "zhang  wei")}
    assert keys == {"wei zhang"}
    assert name_key("张小明") == name_key("Zhang Xiaoming") == name_key("XIAO-MING ZHANG")
    assert name_key("欧阳娜娜") == name_key("Ouyang Nana") == "nana ouyang"


def test_cyrillic_names_match_their_passport_transliteration() -> None:
    assert name_key("Олександр Шевченко") == name_key("Oleksandr Shevchenko")
    assert name_key("Шевченко Олександр") == "oleksandr shevchenko"
    assert name_tokens("Юлія Їжак") == ["yuliia", "yizhak"]
    assert name_tokens("Эдуард Сычёв") == ["eduard", "sychev"]  # Russian table


def test_search_keys_cover_both_tables_and_common_variants() -> None:
    keys = search_keys(
        {
            "full_name": "Дмитрий Харитонов",
            "document_number": "ab-1 o2",
            "external_id": "S-01",
            "alternate_names": ["张伟"],
        }
    )
    assert {"dmitrii", "dmytryi", "kharytonov", "haritonov", "kharitonov"} <= keys
    assert {"AB102", "s-01", "wei zhang", "zhang", "wei"} <= keys
