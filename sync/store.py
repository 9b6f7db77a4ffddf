"""The device's local database: outbox of sealed envelopes, encrypted roster cache, state.

Nothing personal is stored in the clear: envelopes are sealed to the server, and roster
entries and device keys are encrypted under the vault key derived from the passphrase.
Every write is one transaction, committed with WAL and ``synchronous=FULL`` before the
caller is told it happened.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from peewee import (
    BigIntegerField,
    BlobField,
    CharField,
    IntegerField,
    Model,
    SqliteDatabase,
    TextField,
)

PRAGMAS = (
    ("journal_mode", "wal"),
    ("synchronous", "full"),
    ("secure_delete", "on"),
    ("busy_timeout", 10000),
)

QUEUED, SENT, REJECTED = "queued", "sent", "rejected"


def open_database(path: str | Path) -> SqliteDatabase:
    """Open (creating if needed) the device database at ``path``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(str(path), pragmas=PRAGMAS)
    db.connect(reuse_if_open=True)
    return db


def make_models(db: SqliteDatabase) -> SimpleNamespace:
    """Model classes bound to ``db`` (one set per store, so several devices share a process)."""

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class State(Base):
        """Key-value device state; values are JSON text or vault-encrypted bytes."""

        key = CharField(primary_key=True)
        value = BlobField()

    class Outbox(Base):
        """A sealed envelope waiting for, or holding, the server's answer."""

        seq = BigIntegerField(primary_key=True)
        event_id = CharField(max_length=36, unique=True)
        session_id = CharField(max_length=32)
        kind = CharField(max_length=16)
        captured_ms = BigIntegerField()
        envelope = BlobField()
        state = CharField(max_length=10, default=QUEUED, index=True)
        code = CharField(max_length=40, null=True)
        message = TextField(null=True)
        answered_ms = BigIntegerField(null=True)
        attempts = IntegerField(default=0)

    class Session(Base):
        """A capture session's sealed blob (the session key itself never touches disk)."""

        id = CharField(max_length=32, primary_key=True)
        blob = BlobField()

    class Roster(Base):
        """A cached checkpoint, group or person, encrypted under the vault key."""

        id = CharField(max_length=64, primary_key=True)  # "<entity>:<id>"
        entity = CharField(max_length=16, index=True)
        data = BlobField()

    models = SimpleNamespace(State=State, Outbox=Outbox, Session=Session, Roster=Roster)
    db.create_tables([State, Outbox, Session, Roster])
    return models


class Store:
    """Typed access to one device database."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = open_database(self.path)
        self.m = make_models(self.db)

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    # State -----------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        row = self.m.State.get_or_none(self.m.State.key == key)
        return default if row is None else json.loads(bytes(row.value))

    def put(self, key: str, value: Any) -> None:
        self.m.State.replace(key=key, value=json.dumps(value).encode()).execute()

    def get_bytes(self, key: str) -> bytes | None:
        row = self.m.State.get_or_none(self.m.State.key == key)
        return None if row is None else bytes(row.value)

    def put_bytes(self, key: str, value: bytes) -> None:
        self.m.State.replace(key=key, value=value).execute()

    def atomic(self) -> Any:
        """A write transaction that takes the lock at once (one writer at a time)."""
        return self.db.atomic("IMMEDIATE")
