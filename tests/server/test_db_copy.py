"""``server.db.bulk_insert`` stores through COPY on PostgreSQL exactly what ``execute_values`` did.

On PostgreSQL the rows go as COPY text (escaped in Python by ``server.db``); the reference is
the earlier path, ``INSERT … VALUES`` built by psycopg2 (``server.db._insert_values``), which a
call still takes for values without a COPY text form or when a COPY meets a conflict it must
skip. The property tests store arbitrary values both ways and compare what PostgreSQL stored,
or the error each way raised. On SQLite (no COPY) the same properties compare ``bulk_insert``
with peewee's own ``insert_many``, which checks the column-at-a-time value conversion.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from peewee import (
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DoubleField,
    FloatField,
    IntegerField,
    Model,
    TextField,
    UUIDField,
)

import server.db
from server.db import bulk_insert, database, open_database

pytestmark = pytest.mark.storage


class Sample(Model):
    """One column of each kind ``bulk_insert`` may be given; ``note`` is left to its default."""

    pos = IntegerField(primary_key=True)
    key = UUIDField(null=True, unique=True)
    text = TextField(null=True)
    short = CharField(max_length=8, null=True)
    blob = BlobField(null=True)
    small = IntegerField(null=True)
    big = BigIntegerField(null=True)
    single = FloatField(null=True)
    double = DoubleField(null=True)
    flag = BooleanField(null=True)
    at = DateTimeField(null=True)
    day = DateField(null=True)
    note = TextField(default="")

    class Meta:
        database = database
        table_name = "copy_sample"


class Reference(Sample):
    """The same columns, filled the reference way."""

    class Meta:
        table_name = "reference_sample"


COLUMNS = [f.column_name for f in Sample._meta.sorted_fields]


def texts(*, nul: bool, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Arbitrary texts (no lone surrogates), and ones made of COPY's escapes and markers."""
    specials = ["\\", "\t", "\n", "\r", "é", "字", "\x0b", "\x7f", "N", "."] + ["\x00"] * nul
    markers = ["", "\\", "\\N", "\\.", "\t", "\n", "\r", "\r\n", "a\\tb", "\\x41", "'", '"']
    return st.one_of(
        st.text(
            st.characters(codec="utf-8", exclude_characters=None if nul else "\x00"),
            max_size=max_size,
        ),
        st.sampled_from(markers),
        st.lists(st.sampled_from(specials), max_size=max_size).map("".join),
    )


TEXTS = texts(nul=True)
UUIDS = st.uuids().flatmap(lambda u: st.sampled_from([u, str(u), str(u).upper(), u.hex]))
#: Values every column accepts: the calls take the COPY path and store every row.
VALID: dict[str, st.SearchStrategy[Any]] = {
    "key": st.none() | UUIDS,
    "text": st.none() | texts(nul=False),
    "short": st.none() | texts(nul=False, max_size=8),
    "blob": st.none() | st.binary(max_size=64),
    "small": st.none() | st.integers(-(2**31), 2**31 - 1),
    "big": st.none() | st.integers(-(2**63), 2**63 - 1),
    "single": st.none() | st.floats(width=32).filter(lambda f: f == 0 or abs(f) > 1.2e-38),
    "double": st.none() | st.floats(),
    "flag": st.none() | st.booleans(),
    "at": st.none() | st.datetimes(),
    "day": st.none() | st.dates(),
}
#: Anything: NUL in text, numbers out of range, texts too long, aware datetimes (which have
#: no COPY text here: psycopg2 sends them as timestamptz, so the call takes the old path).
ANY: dict[str, st.SearchStrategy[Any]] = {
    **VALID,
    "text": st.none() | TEXTS,
    "short": st.none() | TEXTS,
    "small": st.none() | st.integers(-(2**31) - 2, 2**31 + 1),
    "big": st.none() | st.integers(-(2**63) - 2, 2**63 + 1),
    "single": st.none() | st.floats(),
    "at": st.none()
    | st.datetimes()
    | st.datetimes(
        timezones=st.integers(-23 * 60, 23 * 60).map(
            lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
        )
    ),
}


def numbered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"pos": i, **row} for i, row in enumerate(rows)]


#: Rows of one set of columns (``bulk_insert`` takes them from the first row; the rest of
#: the rows may lack some: they take the column's default, here null).
VALID_ROWS = st.lists(st.fixed_dictionaries({}, optional=VALID), min_size=1, max_size=12).map(
    numbered
)
FULL_VALID_ROWS = st.lists(st.fixed_dictionaries(VALID), min_size=1, max_size=12).map(numbered)
ANY_ROWS = st.lists(st.fixed_dictionaries({}, optional=ANY), min_size=1, max_size=6).map(numbered)

EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def db(db_url: str) -> Iterator[str]:
    """``server.db.database`` on an empty database holding the two sample tables."""
    database.initialize(open_database(db_url))
    database.connect(reuse_if_open=True)
    database.create_tables([Sample, Reference])
    yield server.db.backend_name(database)
    database.drop_tables([Sample, Reference])
    database.close()


def stored(model: type[Model]) -> list[tuple[Any, ...]]:
    """Every row as PostgreSQL or SQLite gives it back; floats by ``repr`` (NaN, -0.0)."""
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    table = model._meta.table_name
    rows = database.execute_sql(f'SELECT {columns} FROM "{table}" ORDER BY "pos"').fetchall()
    return [
        tuple(
            bytes(v) if isinstance(v, memoryview) else repr(v) if isinstance(v, float) else v
            for v in row
        )
        for row in rows
    ]


def reference_insert(backend: str, rows: list[dict[str, Any]], *, ignore: bool) -> int:
    """The path the result must equal: ``execute_values`` on PostgreSQL, peewee on SQLite."""
    if backend == "postgresql":
        with mock.patch.object(server.db, "_copy_data", return_value=None):
            return bulk_insert(Reference, rows, ignore_conflicts=ignore)
    query = Reference.insert_many(rows)
    return int(database.execute(query.on_conflict_ignore() if ignore else query).rowcount)


def outcome(insert: Any, model: type[Model]) -> tuple[Any, ...]:
    """What one insert did, in its own transaction: rows counted and stored, or the error."""
    model.delete().execute()
    try:
        with database.atomic():
            count = insert()
            return ("stored", count, stored(model))
    except Exception as exc:  # compared by kind: both ways must fail alike
        return ("error", type(exc).__name__)


@EXAMPLES
@given(rows=VALID_ROWS)
def test_plain_values_are_stored_as_the_reference_stores_them(
    db: str, rows: list[dict[str, Any]]
) -> None:
    if db == "postgresql":
        # All of them are copied: the old path is not taken.
        with mock.patch.object(server.db, "_insert_values", side_effect=AssertionError("no COPY")):
            got = outcome(lambda: bulk_insert(Sample, rows), Sample)
    else:
        got = outcome(lambda: bulk_insert(Sample, rows), Sample)
    want = outcome(lambda: reference_insert(db, rows, ignore=False), Reference)
    event(got[0])
    assert got == want
    assert got[0] == "stored"


@EXAMPLES
@given(rows=FULL_VALID_ROWS)
def test_rows_with_every_column_are_stored_as_the_reference_stores_them(
    db: str, rows: list[dict[str, Any]]
) -> None:
    got = outcome(lambda: bulk_insert(Sample, rows, ignore_conflicts=True), Sample)
    want = outcome(lambda: reference_insert(db, rows, ignore=True), Reference)
    assert got == want


@EXAMPLES
@given(rows=ANY_ROWS)
def test_any_values_are_stored_or_refused_as_the_reference_does(
    db: str, rows: list[dict[str, Any]]
) -> None:
    got = outcome(lambda: bulk_insert(Sample, rows), Sample)
    want = outcome(lambda: reference_insert(db, rows, ignore=False), Reference)
    event(" ".join(map(str, got[:2])) if got[0] == "error" else "stored")
    assert got == want


KEY_POOL = [uuid.UUID(int=i) for i in range(1, 6)]


@EXAMPLES
@given(
    before=st.lists(st.sampled_from(KEY_POOL), unique=True),
    keys=st.lists(st.none() | st.sampled_from(KEY_POOL), min_size=1, max_size=10),
    notes=st.lists(texts(nul=False), min_size=10, max_size=10),
)
def test_ignoring_conflicts_counts_only_the_rows_stored(
    db: str, before: list[uuid.UUID], keys: list[uuid.UUID | None], notes: list[str]
) -> None:
    """Rows colliding with stored ones or with earlier rows of the call are skipped, not
    counted; earlier inserts of the same transaction survive a call that had to skip some."""
    first = [{"pos": 100 + i, "key": k, "text": "stored"} for i, k in enumerate(before)]
    rows = [{"pos": i, "key": k, "text": notes[i]} for i, k in enumerate(keys)]
    expected: list[int] = []
    seen: set[uuid.UUID | None] = set(before)
    for i, key in enumerate(keys):
        if key is None or key not in seen:  # nulls never collide
            expected.append(i)
            seen.add(key)

    def both(model: type[Model], insert: Any) -> tuple[int, list[int]]:
        model.delete().execute()
        with database.atomic():
            if first:
                assert insert(first) == len(first)
            count = insert(rows)
            database.execute_sql("SELECT 1")  # the transaction is still usable
        positions = [
            r[0]
            for r in database.execute_sql(
                f'SELECT "pos" FROM "{model._meta.table_name}" ORDER BY "pos"'
            ).fetchall()
        ]
        return count, positions

    want = (len(expected), expected + [100 + i for i in range(len(before))])
    assert both(Sample, lambda rs: bulk_insert(Sample, rs, ignore_conflicts=True)) == want
    assert both(Reference, lambda rs: reference_insert(db, rs, ignore=True)) == want


def test_outside_a_transaction_conflicts_are_skipped_too(db: str) -> None:
    key = uuid.uuid4()
    assert bulk_insert(Sample, [{"pos": 1, "key": key}], ignore_conflicts=True) == 1
    rows = [{"pos": 2, "key": key}, {"pos": 3, "key": uuid.uuid4()}]
    assert bulk_insert(Sample, rows, ignore_conflicts=True) == 1
    assert [r[0] for r in stored(Sample)] == [1, 3]


def test_without_ignoring_conflicts_a_conflict_fails_the_call_and_stores_nothing(db: str) -> None:
    key = uuid.uuid4()
    bulk_insert(Sample, [{"pos": 1, "key": key}])
    with pytest.raises(Exception, match="(?i)unique") as raised, database.atomic():
        bulk_insert(Sample, [{"pos": 2, "key": uuid.uuid4()}, {"pos": 3, "key": key}])
    assert type(raised.value).__name__ in {"UniqueViolation", "IntegrityError"}
    assert [r[0] for r in stored(Sample)] == [1]


def test_a_nul_in_text_fails_as_it_did(db: str) -> None:
    """PostgreSQL text cannot hold NUL: psycopg2 refused it with ``ValueError`` before sending
    anything, and so does the COPY path. SQLite stores it (as it always did)."""
    rows = [{"pos": 1, "text": "fine"}, {"pos": 2, "text": "a\x00b"}]
    if db == "postgresql":
        with pytest.raises(ValueError, match="NUL"), database.atomic():
            bulk_insert(Sample, rows)
        assert stored(Sample) == []
    else:
        assert bulk_insert(Sample, rows) == 2


def test_lone_surrogates_fail_as_they_did(db: str) -> None:
    rows = [{"pos": 1, "text": "\ud800"}]
    got = outcome(lambda: bulk_insert(Sample, rows), Sample)
    assert got == outcome(lambda: reference_insert(db, rows, ignore=False), Reference)
    if db == "postgresql":
        assert got == ("error", "UnicodeEncodeError")


def test_rows_are_copied_not_inserted_on_postgresql(db: str) -> None:
    """The fast path is really taken for the plain values ingest stores."""
    if db != "postgresql":
        return
    rows = [
        {
            "pos": i,
            "key": uuid.uuid4(),
            "text": f"t{i}\t\\",
            "blob": bytes([i]) * 3,
            "big": i * 10**12,
            "at": dt.datetime(2026, 11, 29, 7, i),
            "day": dt.date(2026, 11, 29),
            "flag": i % 2 == 0,
        }
        for i in range(20)
    ]
    with mock.patch.object(server.db, "_insert_values", side_effect=AssertionError):
        assert bulk_insert(Sample, rows, ignore_conflicts=True) == 20
        assert bulk_insert(Reference, rows) == 20
    assert stored(Sample) == stored(Reference)
