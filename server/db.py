"""The database: chosen at run time from ``DATABASE_URL``, connected per request.

SQLite (the embedded default) always runs in WAL mode with ``synchronous=FULL`` so that a
commit is on disk before anything is acknowledged. PostgreSQL is reached through psycopg2.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from flask import Flask
from peewee import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BlobField,
    CharField,
    Database,
    DatabaseProxy,
    FloatField,
    ForeignKeyField,
    IntegerField,
    PostgresqlDatabase,
    SqliteDatabase,
    TextField,
    UUIDField,
)
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


class _SqliteWriterTurn:
    """Writers of one SQLite database take turns here before ``BEGIN IMMEDIATE``.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so writers waiting in BEGIN
    IMMEDIATE leave the lock idle between them, and a process that commits back to back (the
    server under a burst of pushes) starves one that polls (the deriver). Threads of a process
    queue on a Python lock, which hands the turn over at once; processes queue on an exclusive
    ``flock`` of ``<database>-writer`` (a file beside the database, like its ``-wal``), which
    wakes a waiting process as soon as the holder lets go. Re-entrant: a nested write
    transaction is a savepoint, and only the outermost takes the file lock.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._depth = 0
        self._files: dict[str, int] = {}

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's turn state and descriptors. A lock taken on an
        inherited descriptor would be the parent's own (``flock`` locks belong to the open
        file, which both share): a child killed while holding it would leave it held as long
        as the parent lives. The child opens the file again when it first writes."""
        for fd in self._files.values():
            with suppress(OSError):
                os.close(fd)  # the parent's descriptor stays open, and its lock with it
        self._files = {}
        self._depth = 0
        self.lock = threading.RLock()  # the thread holding the old one may not exist here

    def _fd(self, database_path: str) -> int | None:
        if not database_path or database_path == ":memory:" or database_path.startswith("file:"):
            return None
        path = os.path.abspath(database_path) + "-writer"
        if path not in self._files:
            if len(self._files) >= 8:  # a process has one database; tests open many in turn
                os.close(self._files.pop(next(iter(self._files))))
            self._files[path] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._files[path]

    @contextmanager
    def __call__(self, database_path: str) -> Iterator[None]:
        with self.lock:
            fd = self._fd(database_path) if self._depth == 0 else None
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)


_SQLITE_WRITER = _SqliteWriterTurn()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SQLITE_WRITER.forget_after_fork)


@contextmanager
def write_transaction() -> Iterator[None]:
    """A write transaction that takes the write lock up front on SQLite (no upgrade deadlocks)."""
    target = database.obj
    if isinstance(target, SqliteDatabase):
        with _SQLITE_WRITER(target.database), target.atomic("IMMEDIATE"):
            yield
    else:
        with target.atomic():
            yield


class _Statistics:
    """Keep the planner statistics of both backends up with tables that grow fast.

    PostgreSQL: autovacuum analyses a table only after about a minute and 10% of new rows, so
    in the first burst of an operation the event table is planned as if it were empty:
    measured here, the join that folds new events into stored states went from 2 ms to 1.5 s
    (a nested loop over every check-in). SQLite never analyses by itself and plans from
    guesses until it has. Writers report the rows they added; once a table has grown by a
    fifth (and at least 5,000 rows) since it was last analysed, it is analysed again
    (PostgreSQL ~0.1 s; SQLite samples at most ``SQLITE_ANALYSIS_LIMIT`` rows of each index,
    a few milliseconds at 1,000,000 events).
    """

    #: Rows a table grows by, at least, before it is analysed again.
    EVERY = 5000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._added: dict[tuple[int, str], int] = {}
        self._size: dict[tuple[int, str], int] = {}

    def grew(self, table: str, rows: int) -> None:
        """Count ``rows`` added to ``table`` (after commit); analyse it when it is due."""
        target = database.obj
        if rows <= 0 or not isinstance(target, PostgresqlDatabase | SqliteDatabase):
            return
        key = (id(target), table)
        with self._lock:
            self._added[key] = self._added.get(key, 0) + rows
            due = self._added[key] >= max(self.EVERY, self._size.get(key, 0) // 5)
            if due:
                self._added[key] = 0
        if not due:
            return
        if isinstance(target, PostgresqlDatabase):
            database.execute_sql(f'ANALYZE "{table}"')
            (size,) = database.execute_sql(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", (table,)
            ).fetchone()
        else:
            with write_transaction():  # ANALYZE writes sqlite_stat1
                database.execute_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
                database.execute_sql(f'ANALYZE "{table}"')
            (size,) = database.execute_sql(f'SELECT MAX(_ROWID_) FROM "{table}"').fetchone()
        with self._lock:
            self._size[key] = max(int(size or 0), 0)


#: Rows of each index SQLite's ANALYZE looks at (its own recommendation: a few hundred to a
#: thousand; the whole index would take seconds at 1,000,000 events).
SQLITE_ANALYSIS_LIMIT = 1000


#: Tables growing in bursts report here: ``statistics.grew("event", n)``.
statistics = _Statistics()


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


def bulk_insert(model: Any, rows: list[dict[str, Any]], *, ignore_conflicts: bool = False) -> int:
    """Insert many rows with one prepared statement (``executemany``), for the hot paths.

    peewee builds SQL per value, which costs more than the insert itself at ingest rates; this
    builds the statement once from the model and converts values with each field's
    ``db_value``. Missing fields take their defaults. ``ON CONFLICT DO NOTHING`` is spoken by
    both SQLite (3.24+) and PostgreSQL. Returns the number of rows inserted.
    """
    if not rows:
        return 0
    fields = [
        f
        for f in model._meta.sorted_fields
        if f.name in rows[0] or (f.default is not None and not f.primary_key)
    ]
    db = database.obj
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    marks = ", ".join([db.param] * len(fields))
    head = f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES '
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""

    converters = [_converter(f) for f in fields]
    names = [f.name for f in fields]
    defaults = [f.default for f in fields]
    params = []
    for row in rows:
        values = []
        for name, convert, default in zip(names, converters, defaults, strict=True):
            v = row[name] if name in row else (default() if callable(default) else default)
            values.append(convert(v))
        params.append(tuple(values))
    cursor = db.cursor()
    if isinstance(db, PostgresqlDatabase):
        from psycopg2.extras import execute_values

        # One multi-row statement, so rowcount counts every row.
        execute_values(cursor, head + "%s" + tail, params, page_size=len(params))
    else:
        cursor.executemany(head + f"({marks})" + tail, params)
    return int(cursor.rowcount)


_NATIVE = (int, str, bytes, float, type(None))
#: Column types whose db_value only coerces a native value (so it can be skipped).
_PLAIN = (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BlobField,
    CharField,
    FloatField,
    IntegerField,
    TextField,
)


def _uuid_hex(value: Any) -> Any:
    """``UUIDField.db_value`` (32 hex digits) without parsing the canonical dashed text form."""
    if type(value) is uuid.UUID:
        return value.hex
    if (
        type(value) is str
        and len(value) == 36
        and value[8] == value[13] == value[18] == value[23] == "-"
        and _HEX.fullmatch(value.replace("-", ""))
    ):
        return value.replace("-", "").lower()
    return _UUID_FIELD.db_value(value)


_HEX = re.compile(r"[0-9a-fA-F]{32}")
_UUID_FIELD = UUIDField()


def _converter(field: Any) -> Any:
    """How a value reaches the driver: peewee's ``db_value``, skipped for native values of
    plain columns (it only coerces them); always applied to UUIDs, dates and booleans."""
    target = field.rel_field if isinstance(field, ForeignKeyField) else field
    db_value = field.db_value
    if type(target) is UUIDField:
        return _uuid_hex
    if type(target) not in _PLAIN:
        # UUIDs, dates, booleans and our own sealed or hashed columns always convert.
        return db_value
    return lambda v: v if type(v) in _NATIVE else db_value(v)


def tuples(query: Any) -> list[tuple[Any, ...]]:
    """The rows of a peewee query as plain tuples (typed, for loops that unpack them)."""
    return list(query.tuples())
