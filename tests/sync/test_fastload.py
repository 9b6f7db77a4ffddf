"""The compiled fast loader gives exactly marshmallow's verdict on every input."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from sync.events import SCHEMAS, validate_body

VALID: dict[str, dict[str, Any]] = {
    "checkin": {
        "v": 1,
        "kind": "checkin",
        "op": 1,
        "at": 1_700_000_000_000,
        "author": "o",
        "checkpoint": 2,
        "person": str(uuid.UUID(int=7)),
        "status": "boarded",
        "method": "scan",
    },
    "walkin": {
        "v": 1,
        "kind": "walkin",
        "op": 1,
        "at": 1,
        "author": "o",
        "checkpoint": 2,
        "person": str(uuid.UUID(int=8)),
        "details": {
            "full_name": "Li Na",
            "birth_date": "2001-02-03",
            "alternate_names": ["李娜"],
            "age": 20,
        },
    },
    "headcount": {
        "v": 1,
        "kind": "headcount",
        "op": 1,
        "at": 1,
        "author": "o",
        "checkpoint": 2,
        "group": 3,
        "count": 52,
    },
    "flag": {
        "v": 1,
        "kind": "flag",
        "op": 1,
        "at": 1,
        "author": "o",
        "person": str(uuid.UUID(int=9)),
        "flag": "medical",
        "note": "asthma",
    },
    "void": {
        "v": 1,
        "kind": "void",
        "op": 1,
        "at": 1,
        "author": "o",
        "ref": str(uuid.UUID(int=10)),
    },
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "2001-02-30",
            "00000000-0000-0000-0000-00000000000g",
            str(uuid.UUID(int=1)),
            "medical",
            "boarded",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


#: Items of a list field: what each item's own validators refuse (NUL, lone surrogates,
#: length) as well as what they accept.
list_items = st.text(max_size=12) | st.sampled_from(
    ["ok\x00nul", "\ud800", "x" * 301, "y" * 33, "李娜", ""]
)


def _verdict(load: Any, body: Any) -> Any:
    try:
        return ("ok", load(body))
    except ValidationError as exc:
        return ("error", exc.messages)


@settings(max_examples=600, deadline=None)
@given(kind=st.sampled_from(sorted(VALID)), data=st.data())
def test_the_fast_loader_agrees_with_marshmallow_on_mutated_bodies(
    kind: str, data: st.DataObject
) -> None:
    body = dict(VALID[kind])
    for _ in range(data.draw(st.integers(0, 3))):
        action = data.draw(st.sampled_from(["drop", "add", "change", "nested"]))
        keys = sorted(body)
        if action == "drop" and keys:
            body.pop(data.draw(st.sampled_from(keys)))
        elif action == "add":
            body[data.draw(st.text(max_size=10))] = data.draw(json_values)
        elif action == "change" and keys:
            body[data.draw(st.sampled_from(keys))] = data.draw(json_values)
        elif action == "nested" and isinstance(body.get("details"), dict):
            details = dict(body["details"])
            field = data.draw(
                st.sampled_from(
                    ["full_name", "age", "birth_date", "sex", "x", "alternate_names", "tags"]
                )
            )
            details[field] = data.draw(json_values | st.lists(list_items, max_size=4))
            body["details"] = details
    body["kind"] = kind
    assert _verdict(validate_body, body) == _verdict(SCHEMAS[kind].load, body)


def test_valid_bodies_load_the_same_both_ways() -> None:
    for kind, body in VALID.items():
        assert validate_body(dict(body)) == SCHEMAS[kind].load(dict(body))


def test_an_unknown_or_unhashable_kind_is_a_validation_error() -> None:
    for kind in ("teleport", ["checkin"], None, 3):
        try:
            validate_body({**VALID["void"], "kind": kind})
        except ValidationError as exc:
            assert "kind" in exc.messages
        else:
            raise AssertionError("accepted")


def test_each_item_of_a_list_is_checked_by_the_item_field_s_own_validators() -> None:
    """The fast path once checked only that list items were strings: a walk-in's alternate
    name with a NUL (which fails a PostgreSQL commit) or over 300 characters passed it."""
    for names in (["ok\x00nul"], ["x" * 301], ["\ud800"]):
        body = {
            **VALID["walkin"],
            "details": {**VALID["walkin"]["details"], "alternate_names": names},
        }
        assert _verdict(validate_body, body)[0] == "error"
        assert _verdict(validate_body, body) == _verdict(SCHEMAS["walkin"].load, body)


push_bodies = st.fixed_dictionaries(
    {},
    optional={
        "clock": json_values | st.integers(0, 2**45),
        "sessions": json_values | st.lists(st.sampled_from(["QUJD", "a-_b", "no/pad=", ""])),
        "envelopes": json_values | st.lists(st.sampled_from(["QUJD", "x+y", "", "Zm9v"])),
        "extra": json_values,
    },
)


@settings(max_examples=400, deadline=None)
@given(body=push_bodies | json_values)
def test_a_push_s_outer_json_loads_as_marshmallow_loads_it(body: Any) -> None:
    """The push request (its ``sessions`` default to an empty list when absent) through the
    compiled loader the sync API uses."""
    from sync.fastload import compile_loader
    from sync.messages import PushRequestSchema

    schema = PushRequestSchema()
    load = compile_loader(schema)
    assert load != schema.load  # compiled, not handed to marshmallow whole
    assert _verdict(load, body) == _verdict(schema.load, body)
