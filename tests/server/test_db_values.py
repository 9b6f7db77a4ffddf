"""The hot-path value conversions of ``server.db.bulk_insert`` give what peewee's fields give."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from peewee import UUIDField

from server.db import _uuid_hex

_FIELD = UUIDField()

ANY_UUID_SPELLING = st.uuids().flatmap(
    lambda u: st.sampled_from([u, str(u), str(u).upper(), u.hex, u.bytes])
)


@given(ANY_UUID_SPELLING)
def test_a_uuid_in_any_spelling_is_stored_as_peewee_would_store_it(value: object) -> None:
    assert _uuid_hex(value) == _FIELD.db_value(value)


@given(
    st.one_of(
        st.none(),
        st.text(max_size=40),
        st.text(alphabet="0123456789abcdefg-", min_size=36, max_size=36),
    )
)
def test_anything_else_is_left_to_peewee(value: object) -> None:
    assert _uuid_hex(value) == _FIELD.db_value(value)


def test_a_dashed_uuid_loses_only_its_dashes() -> None:
    u = uuid.uuid4()
    assert _uuid_hex(str(u)) == u.hex


ID_AS_STORED = st.uuids().flatmap(lambda u: st.sampled_from([u.hex, str(u), u]))


@given(
    ids=st.tuples(ID_AS_STORED, ID_AS_STORED, st.none() | ID_AS_STORED, st.none() | ID_AS_STORED),
    kind=st.sampled_from(["checkin", "walkin", "headcount", "void"]),
    numbers=st.tuples(
        st.integers(0, 10**9),
        st.integers(0, 2**45),
        st.none() | st.integers(-(10**8), 10**8),
        st.none() | st.integers(1, 99),
        st.none() | st.integers(1, 99),
        st.none() | st.integers(0, 500),
    ),
    texts=st.tuples(st.none() | st.text(max_size=8), st.none() | st.text(max_size=8)),
    author=st.text(max_size=12),
    time_flag=st.none() | st.sampled_from(["future", "skew"]),
    received=st.booleans(),
)
def test_an_event_record_is_made_from_a_stored_row_as_the_plain_constructor_would(
    ids: tuple[Any, ...],
    kind: str,
    numbers: tuple[Any, ...],
    texts: tuple[Any, ...],
    author: str,
    time_flag: str | None,
    received: bool,
) -> None:
    """``store.event_rec`` builds records positionally with ids dashed inline (a deriver
    round makes one per event it reads); the same as keyword construction through ``_uid``."""
    from server.reconcile import store
    from server.reconcile.derive import EventRec

    eid, device, person, ref = ids
    seq, captured, skew, cp, group, count = numbers
    status, method = texts
    at = "2026-11-29 10:00:00.123456"
    row = (eid, device, seq, kind, captured, skew, person, cp, group, status, method, author)
    row += (count, ref, at, time_flag, None)
    expected = EventRec(
        id=str(store._uid(eid)),
        device=str(store._uid(device)),
        seq=seq,
        kind=kind,
        captured_ms=captured,
        skew_ms=skew or 0,
        person=store._uid(person),
        checkpoint=cp,
        group=group,
        status=status,
        method=method,
        author=author,
        count=count,
        ref=store._uid(ref),
        received_ms=store._when_ms(at) if received else 0,
        time_flag=time_flag,
    )
    assert store.event_rec(row, received=received) == expected
