"""The database: chosen at run time from ``DATABASE_URL``, connected per request.

SQLite (the embedded default) always runs in WAL mode with ``synchronous=FULL`` so that a
commit is on disk before anything is acknowledged. PostgreSQL is reached through psycopg2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect as connect_url

#: The one database handle every model binds to; initialised by :func:`init_app`.
database = DatabaseProxy()

SQLITE_PRAGMAS = (
    ("journal_mode", "wal"),
    ("synchronous", "full"),
    ("busy_timeout", 30000),
    ("foreign_keys", 1),
    ("secure_delete", 1),
)


def open_database(url: str) -> Database:
    """Return an unconnected peewee database for ``url`` with Muster's settings applied."""
    if url.startswith("sqlite"):
        return connect_url(url, pragmas=SQLITE_PRAGMAS, timeout=30)
    return connect_url(url, autorollback=True) if "autorollback" in url else connect_url(url)


def backend_name(db: Database | DatabaseProxy) -> str:
    """Name the backend (``sqlite`` or ``postgresql``) for health checks and logs."""
    target = db.obj if isinstance(db, DatabaseProxy) else db
    if isinstance(target, SqliteDatabase):
        return "sqlite"
    if isinstance(target, PostgresqlDatabase):
        return "postgresql"
    return type(target).__name__.lower()


@contextmanager
def write_transaction() -> Iterator[None]:
    """A write transaction that takes the write lock up front on SQLite (no upgrade deadlocks)."""
    target = database.obj
    if isinstance(target, SqliteDatabase):
        with target.atomic("IMMEDIATE"):
            yield
    else:
        with target.atomic():
            yield


def init_app(app: Flask) -> None:
    """Bind the proxy to the configured database and open/close a connection per request."""
    database.initialize(open_database(app.config["DATABASE_URL"]))

    @app.before_request
    def _connect() -> None:
        database.connect(reuse_if_open=True)

    @app.teardown_appcontext
    def _close(exc: BaseException | None) -> None:
        if not database.is_closed():
            database.close()


def current_settings() -> dict[str, Any]:
    """Durability settings actually in force on the open connection (for tests and health)."""
    if backend_name(database) != "sqlite":
        return {}
    mode = database.execute_sql("PRAGMA journal_mode").fetchone()[0]
    sync = database.execute_sql("PRAGMA synchronous").fetchone()[0]
    return {"journal_mode": mode, "synchronous": sync}
