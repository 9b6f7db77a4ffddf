"""How a person is shown: the full record for coordinators, without sensitive fields for viewers."""

from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, fields

from server.operations.schemas import UtcDateTime

#: Fields only coordinators and administrators may see.
SENSITIVE_FIELDS = ("document_number", "phone")


class PersonSchema(Schema):
    id = fields.UUID(dump_only=True)
    operation_id = fields.Int(dump_only=True)
    group_id = fields.Int(dump_only=True, allow_none=True)
    external_id = fields.Str(dump_only=True, allow_none=True)
    full_name = fields.Str(dump_only=True)
    given_name = fields.Str(dump_only=True)
    family_name = fields.Str(dump_only=True)
    alternate_names = fields.Method("_alternate_names", dump_only=True)
    sex = fields.Str(dump_only=True)
    birth_date = fields.Date(dump_only=True, allow_none=True)
    age = fields.Int(dump_only=True, allow_none=True)
    nationality = fields.Str(dump_only=True)
    document_type = fields.Str(dump_only=True)
    document_number = fields.Str(dump_only=True)
    phone = fields.Str(dump_only=True)
    tags = fields.Method("_tags", dump_only=True)
    source = fields.Str(dump_only=True)
    source_date = fields.Date(dump_only=True, allow_none=True)
    entry_date = UtcDateTime(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)

    def _alternate_names(self, person: Any) -> list[str]:
        return list(json.loads(person.alternate_names or "[]"))

    def _tags(self, person: Any) -> list[str]:
        return list(json.loads(person.tags or "[]"))


full_person = PersonSchema()
restricted_person = PersonSchema(exclude=SENSITIVE_FIELDS)


def person_schema_for(role: str) -> PersonSchema:
    """The schema a staff member of ``role`` sees people through."""
    return restricted_person if role == "viewer" else full_person
