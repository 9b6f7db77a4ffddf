"""The contract for one roster row after its columns are mapped: ``RosterRowSchema``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates

from server.models import SEXES
from sync.events import free_text

_SEX_WORDS = {
    "m": "male",
    "male": "male",
    "man": "male",
    "男": "male",
    "男性": "male",
    "f": "female",
    "female": "female",
    "woman": "female",
    "女": "female",
    "女性": "female",
    "other": "other",
    "x": "other",
    "其他": "other",
    "unknown": "unknown",
    "u": "unknown",
    "未知": "unknown",
}
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%Y.%m.%d", "%Y%m%d")
_LIST_SPLIT = re.compile(r"[,;、，；|]")


class RosterDate(fields.Field[dt.date]):
    """A date as rosters write it: YYYY-MM-DD, YYYY/MM/DD, DD.MM.YYYY, 2001年3月4日 or an
    Excel date (a date cell, or a serial day number from a workbook)."""

    default_error_messages = {
        "invalid": "Not a date; write YYYY-MM-DD, YYYY/MM/DD or DD.MM.YYYY.",
        "future": "The date is in the future.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            from openpyxl.utils.datetime import from_excel

            try:
                return from_excel(value).date()
            except (ValueError, OverflowError, TypeError) as exc:
                raise self.make_error("invalid") from exc
        text = str(value).strip()
        text = re.sub(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$", r"\1-\2-\3", text)
        text = text.split(" ")[0].split("T")[0]
        for fmt in _DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        raise self.make_error("invalid")


class RosterRowSchema(Schema):
    """One person from a roster. Raw cells come in; typed, normalised values go out."""

    class Meta:
        unknown = RAISE

    external_id = fields.Str(validate=free_text(100))
    full_name = fields.Str(required=True, validate=free_text(300, min_length=1))
    given_name = fields.Str(validate=free_text(200))
    family_name = fields.Str(validate=free_text(200))
    alternate_names = fields.List(fields.Str(validate=free_text(300)))
    sex = fields.Str(validate=validate.OneOf(SEXES, error="Write M, F, male, female, 男 or 女."))
    birth_date = RosterDate()
    age = fields.Int(
        strict=False, validate=validate.Range(min=0, max=130, error="Age must be 0 to 130.")
    )
    nationality = fields.Str(validate=free_text(64))
    document_type = fields.Str(validate=free_text(32))
    document_number = fields.Str(validate=free_text(64))
    phone = fields.Str(validate=free_text(64))
    group = fields.Str(validate=free_text(200))
    tags = fields.List(fields.Str(validate=free_text(64)))

    @pre_load
    def _prepare(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data = dict(data)
        if "full_name" not in data and ("given_name" in data or "family_name" in data):
            data["full_name"] = _join_name(data.get("given_name", ""), data.get("family_name", ""))
        if "sex" in data:
            data["sex"] = _SEX_WORDS.get(str(data["sex"]).strip().casefold(), data["sex"])
        for name in ("tags", "alternate_names"):
            if name in data:
                data[name] = [p.strip() for p in _LIST_SPLIT.split(str(data[name])) if p.strip()]
        if isinstance(data.get("age"), float) and data["age"].is_integer():
            data["age"] = int(data["age"])
        return data

    @validates("birth_date")
    def _not_future(self, value: dt.date, **_: Any) -> None:
        if value > dt.date.today():
            raise ValidationError("The date is in the future.")


def _join_name(given: str, family: str) -> str:
    """Family name first for Chinese script (张 + 伟 -> 张伟), given name first otherwise."""
    if family and given and all(ord(c) > 0x2E80 for c in family + given):
        return family + given
    return " ".join(p for p in (given, family) if p)
