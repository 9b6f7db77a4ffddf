"""Normalise names and document numbers into matching keys, the same way on server and device.

Rules (documented in ``docs/rosters.md``):

- :func:`document_key`: NFKC, upper case, drop whitespace, every dash (Unicode ``Pd`` and the
  minus sign), dots, slashes and backslashes, then map the letter ``O`` to the digit ``0``
  *everywhere* (``O``/``0`` are the commonest typing mix-up; no passport scheme relies on the
  difference). ``'ab 12-34 o5'`` -> ``'AB123405'``.
- :func:`fold`: NFKC, case-fold, strip diacritics, collapse whitespace.
- :func:`name_tokens`: folded Latin tokens. Cyrillic is transliterated (Ukrainian passport
  table when the text has a Ukrainian-only letter or no Russian-only letter, else Russian);
  Chinese characters become toneless pinyin, one syllable per character, plus the given name
  joined (张小明 -> ``zhang xiao ming xiaoming``). Hyphens and apostrophes inside a word join
  it (``Xiao-Ming`` -> ``xiaoming``).
- :func:`name_key`: the canonical tokens sorted, so word order and case do not matter:
  ``张伟``, ``Zhang Wei`` and ``WEI zhang`` all give ``'wei zhang'``.
- :func:`search_keys`: every token, key and variant worth indexing for a person.

This module imports nothing from Flask or the server: field devices use it as it is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["document_key", "fold", "name_key", "name_tokens", "search_keys", "transliterate"]

_DOC_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\ufe58\ufe63\uff0d./\\]+")
_WORD_JOINERS = re.compile(r"[\-\u2010-\u2015'\u2019\u02bc`]")
_NON_WORD = re.compile(r"[^\w]+")

# Ukrainian national transliteration (Cabinet of Ministers resolution 55, 2010), used in
# passports. Word-initial forms of є ї й ю я differ and are handled in _translit_word.
_UK = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "h",
    "ґ": "g",
    "д": "d",
    "е": "e",
    "є": "ie",
    "ж": "zh",
    "з": "z",
    "и": "y",
    "і": "i",
    "ї": "i",
    "й": "i",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ь": "",
    "ю": "iu",
    "я": "ia",
    "'": "",
    "’": "",
    "ʼ": "",
}
_UK_INITIAL = {"є": "ye", "ї": "yi", "й": "y", "ю": "yu", "я": "ya"}
# Russian passport transliteration (ICAO 9303 as used since 2013), with the older
# ``kh``/``iy`` habits kept by using ``kh`` and ``i`` for х and й.
_RU = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ё": "e",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "i",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ъ": "ie",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "iu",
    "я": "ia",
}
_UK_ONLY = set("іїєґ")
_RU_ONLY = set("ыэёъ")
# Cheap second spellings seen on older documents and in registration forms.
_VARIANTS = (("kh", "h"), ("iu", "yu"), ("ia", "ya"), ("ie", "ye"), ("ii", "iy"), ("yi", "iy"))

# Surnames whose usual reading differs from pypinyin's default reading of the character.
_SURNAME_READINGS = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "区": "ou",
    "盖": "ge",
    "乐": "yue",
    "覃": "qin",
    "尉": "yu",
    "缪": "miao",
    "翟": "zhai",
}
_COMPOUND_SURNAMES = {
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "司徒",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "长孙",
    "宇文",
    "夏侯",
    "令狐",
    "端木",
    "西门",
    "独孤",
    "南宫",
}


def document_key(raw: str) -> str:
    """Normalise a document number for matching: ``'ab-123 o45'`` -> ``'AB123045'``."""
    current = raw or ""
    for _ in range(4):  # NFKC after upper-casing can compose anew; stop at the fixed point
        text = unicodedata.normalize("NFKC", current).upper()
        text = _DOC_SEPARATORS.sub("", text).replace("O", "0")
        if text == current:
            break
        current = text
    return current


def fold(text: str) -> str:
    """Fold text for comparison: NFKC, case-fold, no diacritics, single spaces."""
    current = text or ""
    for _ in range(4):  # each step can expose work for another; stop at the fixed point
        folded = _fold_once(current)
        if folded == current:
            break
        current = folded
    return current


def _fold_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(unicodedata.normalize("NFKC", text).split())


def transliterate(text: str, table: str | None = None) -> str:
    """Write Cyrillic letters of case-folded ``text`` in Latin (``'uk'`` or ``'ru'`` table).

    Without ``table`` the text chooses: Russian when it has a Russian-only letter and no
    Ukrainian-only one, else Ukrainian.
    """
    text = unicodedata.normalize("NFC", text).casefold()
    if table is None:
        letters = set(text)
        table = "ru" if letters & _RU_ONLY and not letters & _UK_ONLY else "uk"
    return re.sub(r"[\u0400-\u04ff'’ʼ]+", lambda m: _translit_word(m.group(0), table), text)


def _translit_word(word: str, table: str) -> str:
    mapping = _UK if table == "uk" else _RU
    out = []
    for i, ch in enumerate(word):
        if table == "uk" and i == 0 and ch in _UK_INITIAL:
            out.append(_UK_INITIAL[ch])
        elif table == "uk" and ch == "г" and i > 0 and word[i - 1] == "з":
            out.append("gh")  # зг -> zgh keeps it apart from ж (zh)
        else:
            out.append(mapping.get(ch, ch))
    return "".join(out)


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FFFF


def _han_run_tokens(run: str) -> tuple[list[str], list[str]]:
    """Syllables of a run of Chinese characters, and its canonical (surname, given) tokens."""
    from pypinyin import Style, lazy_pinyin

    syllables = [s.replace("ü", "v") for s in lazy_pinyin(run, style=Style.NORMAL, v_to_u=False)]
    if run[0] in _SURNAME_READINGS:
        syllables[0] = _SURNAME_READINGS[run[0]]
    if len(run) == 1:
        return syllables, syllables
    split = 2 if run[:2] in _COMPOUND_SURNAMES and len(run) > 2 else 1
    canonical = ["".join(syllables[:split]), "".join(syllables[split:])]
    return syllables, canonical


def _analyse(name: str, table: str | None = None) -> tuple[list[str], list[str]]:
    """All search tokens of ``name`` and its canonical tokens (the ones ``name_key`` sorts)."""
    text = unicodedata.normalize("NFKC", name or "").casefold()
    text = transliterate(text, table)
    tokens: list[str] = []
    canonical: list[str] = []
    for chunk in re.split(r"([\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+)", text):
        if not chunk:
            continue
        if _is_han(chunk[0]):
            syllables, canon = _han_run_tokens(chunk)
            tokens.extend(syllables)
            canonical.extend(canon)
            if len(canon) > 1 and len(syllables) > 2:
                tokens.append(canon[1])  # the given name joined: xiaoming
                tokens.append(canon[0])  # and a compound surname joined: ouyang
            continue
        folded = fold(_WORD_JOINERS.sub("", chunk))
        words = [w for w in _NON_WORD.sub(" ", folded).replace("_", " ").split() if w]
        tokens.extend(words)
        canonical.extend(words)
    return _unique(tokens), canonical


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)


def name_tokens(name: str) -> list[str]:
    """Latin, folded tokens of a name in any script: ``'张伟'`` -> ``['zhang', 'wei']``."""
    return _analyse(name)[0]


def name_key(name: str) -> str:
    """An order- and case-independent key for a name: ``'WEI Zhang'`` -> ``'wei zhang'``."""
    return " ".join(sorted(_analyse(name)[1]))


def _variants(token: str) -> set[str]:
    out = {token}
    for old, new in _VARIANTS:
        out |= {t.replace(old, new) for t in out if old in t}
    return out


def search_keys(person: Mapping[str, Any]) -> set[str]:
    """Every key worth indexing for a person: name tokens (with spelling variants), the name
    keys of each name, the document key and the folded external id."""
    names: list[str] = [person.get("full_name") or ""]
    given, family = person.get("given_name") or "", person.get("family_name") or ""
    if given or family:
        names.append(f"{given} {family}")
    names.extend(person.get("alternate_names") or [])
    keys: set[str] = set()
    for name in names:
        if not name.strip():
            continue
        for table in ("uk", "ru"):
            tokens, canonical = _analyse(name, table)
            keys.add(" ".join(sorted(canonical)))
            for token in tokens:
                keys |= _variants(token)
    if person.get("document_number"):
        keys.add(document_key(person["document_number"]))
    if person.get("external_id"):
        keys.add(fold(str(person["external_id"])))
    keys.discard("")
    return keys
