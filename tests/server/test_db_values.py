"""The hot-path value conversions of ``server.db.bulk_insert`` give what peewee's fields give."""

from __future__ import annotations

import uuid

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
