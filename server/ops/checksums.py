"""Row counts and order-independent checksums of tables, comparable across SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import uuid
from typing import Any

from peewee import Database, Model


def canonical(value: Any) -> Any:
    """One representation of a value whichever backend it was read from."""
    if isinstance(value, memoryview | bytearray | bytes):
        return "b:" + bytes(value).hex()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    return value


def table_digest(model: type[Model], db: Database) -> tuple[int, str]:
    """Count the rows of ``model``'s table in ``db`` and hash them (row order does not matter).

    Rows are read through the model's fields, so UUIDs, times and blobs are compared as values,
    not as each backend's storage format.
    """
    names = [f.name for f in model._meta.sorted_fields]
    digests = []
    query = model.select().dicts().bind(db)
    for row in query.iterator():
        line = json.dumps([canonical(row[n]) for n in names], ensure_ascii=False, default=str)
        digests.append(hashlib.sha256(line.encode()).digest())
    digests.sort()
    total = hashlib.sha256()
    for d in digests:
        total.update(d)
    return len(digests), total.hexdigest()
