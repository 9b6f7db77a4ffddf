"""The base model every table derives from, bound to the run-time database proxy."""

from __future__ import annotations

import datetime as dt

from peewee import Model

from server.db import database


def utcnow() -> dt.datetime:
    """Naive UTC now, the one clock the server stores (devices' clocks are data)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False
