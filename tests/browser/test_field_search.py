"""The browser's roster search normalises names and documents as sync/normalize.py does."""

from __future__ import annotations

from typing import Any

import pytest

from sync.normalize import document_key, fold, name_tokens, transliterate
from tests.conftest import LiveServer

pytestmark = pytest.mark.sqlite_only

SAMPLES = [
    "Anna-Maria  BAUER",
    "Chloé Martin",
    "José García",
    "Straße",
    "İsmail",
    "ab 12-34 o5",
    "FA–100‑OO2",
    "Ｆｕｌｌ ｗｉｄｔｈ 123",
    "Олена Коваленко",
    "Дмитрий Иванов",
    "Юрій Згурський",
    "Ганна Шевченко",
    "Д'Артаньян",
    "O'Brien",
]

NORMALISE = """async (samples) => {
  const s = await import("/field/js/search.js");
  return samples.map((x) => [s.fold(x), s.documentKey(x), s.transliterate(x), s.nameTokens(x)]);
}"""

FIND = """async () => {
  const { RosterIndex } = await import("/field/js/search.js");
  const index = new RosterIndex();
  const people = [
    { id: "7a3e9b10-5d2c-4f8e-8a61-0c9d2e4f6b02", full_name: "张小明", alternate_names: ["Zhang Xiaoming"] },
    { id: "7a3e9b10-5d2c-4f8e-8a61-0c9d2e4f6b03", full_name: "Олена Коваленко", document_number: "FK 100-006" },
    { id: "7a3e9b10-5d2c-4f8e-8a61-0c9d2e4f6b04", full_name: "Khrystyna Zhuk" },
  ];
  people.forEach((p) => index.add(p));
  const q = (text) => index.find(text).map((p) => p.full_name);
  return {
    han: q("小明"), pinyin: q("XIAOMING zhang"), prefix: q("zha xiao"), cyrillic: q("Коваленко Олена"),
    latin: q("olena"), document: q("fk-100 oo6"), variant: q("hrystyna"),
    scan: q("muster:person:7A3E9B105D2C4F8E8A610C9D2E4F6B04"), none: q("zhang olena"),
  };
}"""


def test_fold_document_keys_and_cyrillic_tokens_match_the_python_reference(
    field_server: LiveServer, phone: Any
) -> None:
    page = phone.new_page()
    page.goto(field_server.url + "/field/")
    out = page.evaluate(NORMALISE, SAMPLES)
    expected = [[fold(x), document_key(x), transliterate(x), name_tokens(x)] for x in SAMPLES]
    assert out == expected


def test_people_are_found_in_any_script_order_prefix_document_or_scanned_code(
    field_server: LiveServer, phone: Any
) -> None:
    page = phone.new_page()
    page.goto(field_server.url + "/field/")
    out = page.evaluate(FIND)
    assert out == {
        "han": ["张小明"],
        "pinyin": ["张小明"],
        "prefix": ["张小明"],
        "cyrillic": ["Олена Коваленко"],
        "latin": ["Олена Коваленко"],
        "document": ["Олена Коваленко"],
        "variant": ["Khrystyna Zhuk"],
        "scan": ["Khrystyna Zhuk"],
        "none": [],
    }
