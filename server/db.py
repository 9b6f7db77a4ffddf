"""The database: chosen at run time from ``DATABASE_URL``, connected per request.

SQLite (the embedded default) always runs in WAL mode with ``synchronous=FULL`` so that a
commit is on disk before anything is acknowledged. PostgreSQL is reached through psycopg2.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import io
import math
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
    """Insert many rows at once, for the hot paths; returns the number of rows inserted.

    peewee builds SQL per value, which costs more than the insert itself at ingest rates; this
    builds the statement once from the model and converts values with each field's
    ``db_value``. Missing fields take their defaults. With ``ignore_conflicts`` a row that
    collides with a stored one (on any unique index) is skipped and not counted.

    SQLite gets one prepared statement (``executemany``). PostgreSQL gets the rows as ``COPY``
    text (:func:`_copy_in`): psycopg2's ``execute_values`` quoted each value in Python (a
    quarter of the server's time during ingest) and PostgreSQL then parsed a statement of
    10,000 literals. A call holding a value of a type not written as COPY text here (see
    ``_COPY_TEXT``), or whose COPY meets a conflict it must skip, takes that old path instead.
    """
    if not rows:
        return 0
    fields = [
        f
        for f in model._meta.sorted_fields
        if f.name in rows[0] or (f.default is not None and not f.primary_key)
    ]
    db = database.obj
    values = [_column(rows, f) for f in fields]
    table = model._meta.table_name
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    if isinstance(db, PostgresqlDatabase):
        connection = db.connection()
        data = _copy_data(values, _python_encoding(connection))
        if data is not None:
            inserted = _copy_in(connection, table, columns, data, len(rows), ignore_conflicts)
            if inserted is not None:
                return inserted
    return _insert_values(db, table, columns, list(zip(*values, strict=True)), ignore_conflicts)


def _insert_values(
    db: Database, table: str, columns: str, params: list[tuple[Any, ...]], ignore_conflicts: bool
) -> int:
    """``INSERT … VALUES`` of every row in one statement (``execute_values`` on PostgreSQL)."""
    head = f'INSERT INTO "{table}" ({columns}) VALUES '
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    cursor = db.cursor()
    if isinstance(db, PostgresqlDatabase):
        from psycopg2.extras import execute_values

        # One multi-row statement, so rowcount counts every row.
        execute_values(cursor, head + "%s" + tail, params, page_size=len(params))
    else:
        marks = ", ".join([db.param] * len(params[0]))
        cursor.executemany(head + f"({marks})" + tail, params)
    return int(cursor.rowcount)


def _copy_in(
    connection: Any, table: str, columns: str, data: bytes, count: int, ignore_conflicts: bool
) -> int | None:
    """``COPY`` the ``count`` rows of ``data`` into ``table``; ``None`` if the caller must
    insert them the old way because one collides with a stored row and ``ignore_conflicts``.

    ``COPY`` cannot skip a conflicting row: it stores all or nothing. With ``ignore_conflicts``
    it runs inside a savepoint (in the same round trip), so a conflict undoes only this COPY and
    the rows go again as ``INSERT … ON CONFLICT DO NOTHING``, whose row count is the rows
    actually stored. Conflicts are rare on the hot path (ingest looks up known ids first), so
    they cost a second try. The alternative, COPY into a temporary table and then ``INSERT …
    SELECT … ON CONFLICT DO NOTHING``, measured slower per 500 event rows: 15 ms of
    PostgreSQL's CPU instead of 12, 35 ms instead of 25 end to end (its INSERT also writes row
    by row where COPY batches). Released savepoints still count towards PostgreSQL's 64 cached
    subtransactions per transaction; ingest makes at most two per chunk of a group commit.
    """
    import psycopg2
    from psycopg2.extensions import TRANSACTION_STATUS_IDLE

    cursor = connection.cursor()
    copy = f'COPY "{table}" ({columns}) FROM STDIN'
    # Outside a transaction COPY is its own (all or nothing), and SAVEPOINT is refused.
    guarded = ignore_conflicts and connection.get_transaction_status() != TRANSACTION_STATUS_IDLE
    if guarded:
        copy = f"SAVEPOINT muster_copy; {copy}; RELEASE SAVEPOINT muster_copy"
    try:
        cursor.copy_expert(copy, io.BytesIO(data), len(data))
    except psycopg2.errors.UniqueViolation:
        if not ignore_conflicts:
            raise
        if guarded:
            cursor.execute("ROLLBACK TO SAVEPOINT muster_copy; RELEASE SAVEPOINT muster_copy")
        return None
    # COPY stored every row (the row count psycopg2 reports is the RELEASE's, when guarded).
    return count


_NUL = "A string literal cannot contain NUL (0x00) characters."  # psycopg2's own words
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NONE = type(None)
_NULL = "\\N"


class _NoCopyText(Exception):
    """A value this module does not write as COPY text: the call takes the old path."""


def _copy_str(value: str) -> str:
    """Text in COPY text format: backslash, tab, newline and carriage return escaped.

    A NUL cannot be stored in PostgreSQL text at all: it raises the very ``ValueError`` that
    psycopg2 raises for it on the ``execute_values`` path, before anything is sent."""
    if "\\" not in value and value.isprintable():  # the common case: nothing to escape
        return value
    if "\x00" in value:
        raise ValueError(_NUL)
    return value.translate(_COPY_ESCAPES)


def _copy_bytes(value: bytes) -> str:
    """bytea in its hex input form, the backslash doubled for COPY."""
    return "\\\\x" + value.hex()


def _copy_float(value: float) -> str:
    """As psycopg2 sends it: ``repr``, its spellings of NaN and infinities, and no negative
    zero (its literal ``-0.0`` is a numeric constant, which has no sign for zero)."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value) if value else "0"


def _copy_datetime(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        # psycopg2 sends these as timestamptz, which PostgreSQL converts to the session's time
        # zone for a timestamp column, while COPY would drop the offset: leave them to it.
        raise _NoCopyText
    return value.isoformat()


#: How each exact type of converted value is written as COPY text. Any other type (aware
#: datetimes, Decimal, UUID objects, subclasses such as IntEnum) is left to psycopg2.
_COPY_TEXT: dict[type, Any] = {
    str: _copy_str,
    int: int.__repr__,
    _NONE: lambda _v: _NULL,
    bytes: _copy_bytes,
    float: _copy_float,
    bool: lambda v: "true" if v else "false",
    dt.datetime: _copy_datetime,
    dt.date: dt.date.isoformat,
}
_TEXT_KINDS = {str, _NONE}
_INT_KINDS = {int}
_BYTES_KINDS = {bytes}
_DATETIME_KINDS = {dt.datetime, _NONE}


def _copy_data(columns: list[list[Any]], encoding: str) -> bytes | None:
    """The rows (given column by column) as COPY text, or ``None`` when a value has no COPY
    text here. Columns of one plain type take a fast path at C speed."""
    try:
        texts = [_copy_column(values) for values in columns]
    except _NoCopyText:
        return None
    lines = list(map("\t".join, zip(*texts, strict=True)))
    lines.append("")
    return "\n".join(lines).encode(encoding)


def _copy_column(values: list[Any]) -> list[str]:
    """One column's values as COPY text."""
    kinds = set(map(type, values))
    if kinds <= _TEXT_KINDS:
        nulls = _NONE in kinds
        joined = "".join([v for v in values if v is not None] if nulls else values)
        if "\\" not in joined and joined.isprintable():  # nothing to escape, no NUL
            return [_NULL if v is None else v for v in values] if nulls else values
    elif kinds == _INT_KINDS:
        return list(map(int.__repr__, values))
    elif kinds == _BYTES_KINDS:
        return ["\\\\x" + v.hex() for v in values]
    elif kinds <= _DATETIME_KINDS:
        # Each distinct time written once: ingest stamps one receipt time on a whole chunk.
        texts = {v: _COPY_TEXT[type(v)](v) for v in set(values)}
        return [texts[v] for v in values]
    if not kinds <= _COPY_TEXT.keys():
        raise _NoCopyText
    text = _COPY_TEXT
    return [text[type(v)](v) for v in values]


def _python_encoding(connection: Any) -> str:
    """The Python codec of the connection's client encoding (UTF8 unless configured)."""
    from psycopg2.extensions import encodings

    return str(encodings[connection.encoding])


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


def _column(rows: list[dict[str, Any]], field: Any) -> list[Any]:
    """One column of ``rows`` as the driver gets it (missing values take the field's default).

    Each value goes through peewee's ``db_value``, except where that only coerces: native
    values of plain columns are left as they are, and UUIDs become hex without parsing (see
    :func:`_uuid_hex`). Dates, booleans and our own sealed or hashed columns always convert.
    Done a column at a time, so a column of one native type is checked at C speed."""
    name = field.name
    try:
        values = [row[name] for row in rows]
    except KeyError:
        default = field.default
        values = [
            row[name] if name in row else (default() if callable(default) else default)
            for row in rows
        ]
    target = field.rel_field if isinstance(field, ForeignKeyField) else field
    if type(target) is UUIDField:
        if set(map(type, values)) <= _UUID_KINDS:
            return [None if v is None else v.hex for v in values]
        return list(map(_uuid_hex, values))
    if type(target) in _PLAIN:
        if set(map(type, values)) <= _NATIVE_KINDS:
            return values
        db_value = field.db_value
        return [v if type(v) in _NATIVE else db_value(v) for v in values]
    return list(map(field.db_value, values))


_NATIVE_KINDS = set(_NATIVE)
_UUID_KINDS = {uuid.UUID, type(None)}


def tuples(query: Any) -> list[tuple[Any, ...]]:
    """The rows of a peewee query as plain tuples (typed, for loops that unpack them)."""
    return list(query.tuples())
