"""Map a roster's header cells to person fields: built-in English and Chinese aliases plus
the operator's own ``Header Text=field`` mapping."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from server.errors import MusterError
from sync.normalize import fold
from sync.protocol import ErrorCode

#: Every field a roster may fill, with the header texts recognised for it.
ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": (
        "external id",
        "id",
        "record id",
        "student id",
        "student number",
        "registration id",
        "registration number",
        "编号",
        "学号",
        "登记号",
    ),
    "full_name": ("full name", "name", "姓名", "全名", "名字", "中文姓名"),
    "given_name": ("given name", "first name", "forename", "名"),
    "family_name": ("family name", "last name", "surname", "姓"),
    "alternate_names": (
        "alternate names",
        "alternate name",
        "other names",
        "alias",
        "aliases",
        "pinyin",
        "name pinyin",
        "其他名字",
        "别名",
        "曾用名",
        "拼音",
        "拼音姓名",
        "英文名",
        "英文姓名",
        "护照姓名",
    ),
    "sex": ("sex", "gender", "性别"),
    "birth_date": ("birth date", "date of birth", "dob", "birthday", "出生日期", "生日"),
    "age": ("age", "年龄"),
    "nationality": ("nationality", "citizenship", "国籍"),
    "document_type": ("document type", "doc type", "id type", "证件类型"),
    "document_number": (
        "document number",
        "document no",
        "doc no",
        "doc number",
        "passport",
        "passport number",
        "passport no",
        "id number",
        "护照号",
        "护照号码",
        "证件号",
        "证件号码",
    ),
    "phone": (
        "phone",
        "phone number",
        "telephone",
        "mobile",
        "tel",
        "电话",
        "手机",
        "手机号",
        "联系电话",
    ),
    "group": ("group", "group name", "bus", "组", "分组", "车次"),
    "tags": ("tags", "tag", "标签"),
}

FIELDS: tuple[str, ...] = tuple(ALIASES)
_PUNCT = re.compile(r"[\s_\-.:：()（）*#]+")


def header_key(text: str) -> str:
    """Fold a header cell so that case, spacing and punctuation do not matter."""
    return _PUNCT.sub("", fold(text))


_LOOKUP: dict[str, str] = {
    header_key(alias): name for name, aliases in ALIASES.items() for alias in (name, *aliases)
}


@dataclass
class Columns:
    """Which field each column of a roster fills (``None``: ignored, reported as unknown)."""

    header: list[str]
    fields: list[str | None]
    unknown: list[str] = field(default_factory=list)

    def header_of(self, name: str) -> str:
        """The header text of the column that fills field ``name`` (for error messages)."""
        for text, mapped in zip(self.header, self.fields, strict=True):
            if mapped == name:
                return text
        return name


def parse_mapping(pairs: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """Turn ``["Header Text=field", ...]`` or ``{"Header Text": "field"}`` into a checked map."""
    items: list[tuple[str, str]] = []
    if isinstance(pairs, Mapping):
        items = [(str(k), str(v)) for k, v in pairs.items()]
    else:
        for pair in pairs:
            header, sep, target = pair.rpartition("=")
            if not sep or not header.strip():
                raise MusterError(
                    "A column mapping is written 'Header Text=field'.",
                    code=ErrorCode.ROSTER_INVALID,
                    details={"mapping": pair},
                )
            items.append((header, target))
    mapping: dict[str, str] = {}
    for header, target in items:
        target = target.strip()
        if target not in FIELDS and target != "ignore":
            raise MusterError(
                f"Unknown field '{target}' in a column mapping.",
                code=ErrorCode.ROSTER_INVALID,
                details={"mapping": header, "fields": [*FIELDS, "ignore"]},
            )
        mapping[header_key(header)] = target
    return mapping


def resolve(header: Sequence[str], mapping: Mapping[str, str] | None = None) -> Columns:
    """Map a header row to fields; refuse a header with no name column or a field twice."""
    mapping = mapping or {}
    texts = [str(h or "").strip() for h in header]
    fields: list[str | None] = []
    unknown: list[str] = []
    for text in texts:
        key = header_key(text)
        target = mapping.get(key) or _LOOKUP.get(key)
        if target == "ignore" or not key:
            target = None
        elif target is None:
            unknown.append(text)
        fields.append(target)
    seen: dict[str, str] = {}
    for text, target in zip(texts, fields, strict=True):
        if target is None:
            continue
        if target in seen:
            raise MusterError(
                f"Columns '{seen[target]}' and '{text}' both fill the field '{target}'; "
                "map one of them to another field or to 'ignore'.",
                code=ErrorCode.ROSTER_INVALID,
                details={"field": target},
            )
        seen[target] = text
    if "full_name" not in seen and not {"given_name", "family_name"} <= seen.keys():
        raise MusterError(
            "No name column was recognised: the header needs a full name column (e.g. 'Name' "
            "or '姓名') or both given and family name columns; use --map 'Header=full_name'.",
            code=ErrorCode.ROSTER_INVALID,
            details={"columns": len(texts)},
        )
    return Columns(texts, fields, unknown)
