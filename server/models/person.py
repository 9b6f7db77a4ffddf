"""People: from rosters or registered as walk-ins. Fields follow PFIF 1.4."""

from __future__ import annotations

from peewee import (
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
    UUIDField,
)

from server.crypto.fields import BlindIndexField, SealedTextField
from server.models.base import BaseModel, utcnow
from server.models.operation import Group, Operation

PERSON_SOURCES = ("roster", "walk-in")
SEXES = ("female", "male", "other", "unknown")


class Person(BaseModel):
    """A person Muster must account for. ``document_number`` and ``phone`` are sensitive."""

    operation_id: int
    group_id: int | None

    id = UUIDField(primary_key=True)
    operation = ForeignKeyField(Operation, backref="people", on_delete="CASCADE")
    group = ForeignKeyField(Group, backref="people", null=True, on_delete="SET NULL")
    external_id = CharField(max_length=100, null=True)
    full_name = CharField(max_length=300)
    given_name = CharField(max_length=200, default="")
    family_name = CharField(max_length=200, default="")
    # Other scripts or spellings of the name, as a JSON list of strings.
    alternate_names = TextField(default="[]")
    sex = CharField(max_length=8, default="unknown")
    birth_date = DateField(null=True)
    age = IntegerField(null=True)
    nationality = CharField(max_length=64, default="")
    document_type = CharField(max_length=32, default="")
    # Sealed at rest (server.crypto.fields): a copy of the database alone does not give them.
    document_number = SealedTextField(default="")
    # Keyed hash of the normalised document number (upper case, no separators, O->0): the
    # matching key. Compare it with ``Person.document_key == document_key(raw)``.
    document_key = BlindIndexField(default="", index=True)
    phone = SealedTextField(default="")
    tags = TextField(default="[]")
    source = CharField(max_length=8, default="roster")
    source_date = DateField(null=True)
    entry_date = DateTimeField(default=utcnow)
    expiry_date = DateField(null=True)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("operation", "external_id"), True),)
