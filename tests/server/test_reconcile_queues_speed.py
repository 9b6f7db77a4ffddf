"""The kept conflicts order and the duplicates cache give the same pages as the whole computation.

``queues.conflicts_page`` keeps, per operation, the (key, person) order of every stored open
conflict and takes in only the people whose stored version changed; ``queues.duplicates``
computes the pairs again only when the rows they are computed from changed. These tests hold
both to ``queues._conflicts`` and ``queues._duplicates`` (the whole computations) after random
check-ins, voids, merges, moves, dismissals, renames and rebuilds, page by page, on both
backends.
"""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from server.cli.serve import warm_queues
from server.db import database, write_transaction
from server.models import Checkpoint, Person, RouteStop
from server.reconcile import queues, store
from server.reconcile.derive import PersonState as DerivedState
from tests.server.test_reconcile_headcounts import World


class RoutedWorld(World):
    """``World`` with three checkpoints on the first group's route (route reversals too)."""

    def __init__(self) -> None:
        super().__init__()
        self.cps = [Checkpoint.create(operation=self.op, name=f"CP {i}").id for i in range(3)]
        for pos, cp in enumerate(self.cps, start=1):
            RouteStop.create(group=self.groups[0], checkpoint=cp, position=pos)


def whole_pages(op: int, size: int) -> None:
    """Every page of the conflicts queue equals the same slice of the whole computation."""
    whole = queues._conflicts(op)
    offset = 0
    while True:
        items, total = queues.conflicts_page(op, size, offset)
        assert total == len(whole)
        assert items == whole[offset : offset + size]
        if not items:
            break
        offset += size
    assert queues.queue_page(op, "conflicts", None, size, 0) == (whole[:size], len(whole))


@st.composite
def sorted_ops(draw: st.DrawFn) -> list[tuple[str, tuple[str, str]]]:
    items = st.tuples(st.sampled_from("abcdef"), st.sampled_from("xyz"))
    return draw(st.lists(st.tuples(st.sampled_from(["add", "remove"]), items), max_size=80))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("xyz")), unique=True),
    sorted_ops(),
    st.integers(0, 30),
    st.one_of(st.none(), st.integers(0, 30)),
)
def test_the_bucketed_sorted_list_equals_a_sorted_list_after_any_adds_and_removes(
    first: list[tuple[str, str]],
    ops: list[tuple[str, tuple[str, str]]],
    offset: int,
    limit: int | None,
) -> None:
    queues._Sorted.LOAD = 2  # tiny buckets: splits and emptied buckets happen often
    try:
        kept = queues._Sorted(sorted(first))
        plain = sorted(first)
        for op, item in ops:
            if op == "add" and item not in plain:
                kept.add(item)
                plain = sorted([*plain, item])
            elif op == "remove":
                if item in plain:
                    kept.remove(item)
                    plain.remove(item)
                else:
                    with pytest.raises(KeyError):
                        kept.remove(item)
            assert list(kept) == plain
            assert kept.size == len(plain)
            assert kept.maxes == [b[-1] for b in kept.buckets]
            assert all(kept.buckets)
        end = None if limit is None else offset + limit
        assert kept.slice(offset, limit) == plain[offset:end]
    finally:
        queues._Sorted.LOAD = 1000


def test_kept_conflict_pages_and_duplicates_equal_the_whole_computation_after_every_change(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    whole_build = queues._build_conflicts
    monkeypatch.setattr(
        queues, "_build_conflicts", lambda op, key: built.append(op) or whole_build(op, key)
    )
    # Small: the "too many changed, build again" path is taken too.
    monkeypatch.setattr(queues, "_REBUILD_PEOPLE", 3)
    paths: dict[str, int] = {}

    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        with app.app_context(), database.connection_context():
            w = RoutedWorld()
            for _ in range(data.draw(st.integers(1, 7), label="steps")):
                step = data.draw(
                    st.sampled_from(
                        ["events", "events", "events", "void", "merge", "move", "dismiss",
                         "rename", "rebuild"]
                    ),
                    label="step",
                )  # fmt: skip
                before = len(built)
                if step == "events":
                    rows = []
                    for _ in range(data.draw(st.integers(1, 8), label="batch")):
                        kind = data.draw(st.sampled_from(["checkin", "checkin", "walkin"]))
                        device = data.draw(st.integers(0, 1))
                        minute = data.draw(st.integers(0, 40))
                        cp = data.draw(st.sampled_from(w.cps))
                        rows.append(w.drawn(data, kind, device, minute, cp))
                    w.received += dt.timedelta(seconds=5)
                    w.store(rows, w.received)
                elif step == "void" and w.events:
                    # The other device's void is a foreign_void conflict; its own retracts.
                    target = data.draw(st.sampled_from(w.events))
                    w.received += dt.timedelta(seconds=5)
                    w.store(
                        [w.body(data.draw(st.integers(0, 1)), "void", 41, ref=target["id"])],
                        w.received,
                    )
                elif step == "merge":
                    dup, into = (data.draw(st.sampled_from(w.people)) for _ in range(2))
                    w.resolve(kind="merge", person=dup, into=into)
                elif step == "move":
                    person = data.draw(st.sampled_from(w.people))
                    w.resolve(
                        kind="move", person=person, group=data.draw(st.sampled_from(w.groups))
                    )
                elif step == "dismiss":
                    found = queues._conflicts(w.op.id)
                    pairs = queues._duplicates(w.op.id)
                    if found and data.draw(st.booleans()):
                        c = data.draw(st.sampled_from(found))
                        w.resolve(kind="resolve", key=c["key"], person=c["person"])
                    elif pairs:
                        w.resolve(kind="resolve", key=data.draw(st.sampled_from(pairs))["key"])
                elif step == "rename":
                    # A roster re-import: a name (and so duplicate keys) changes.
                    person = data.draw(st.sampled_from(w.people))
                    other = data.draw(st.sampled_from(w.people))
                    with write_transaction():
                        Person.update(
                            full_name=Person.select(Person.full_name)
                            .where(Person.id == other)
                            .scalar(),
                            updated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                        ).where(Person.id == person).execute()
                elif step == "rebuild":
                    with write_transaction():
                        store.rebuild(w.op.id)
                whole_pages(w.op.id, data.draw(st.integers(1, 7), label="page"))
                assert queues.duplicates(w.op.id) == queues._duplicates(w.op.id)
                path = f"{step}: {'built' if len(built) > before else 'kept'}"
                paths[path] = paths.get(path, 0) + 1
                event(path)
                # Nothing changed: the next page is answered from what is kept.
                before = len(built)
                whole_pages(w.op.id, 3)
                assert len(built) == before

    run()
    print(sorted(paths.items()))
    assert paths.get("events: kept", 0) > 0
    assert paths.get("void: kept", 0) > 0
    assert sum(n for p, n in paths.items() if p.endswith("built")) > 0


def test_a_conflict_stored_for_two_people_is_listed_for_both_in_person_order(
    app: Flask,
) -> None:
    with app.app_context(), database.connection_context():
        w = World()
        shared = {"key": "two_places:a:b", "kind": "two_places", "events": ["a", "b"]}
        own = {"key": "two_places:a:c", "kind": "two_places", "events": ["a", "c"]}
        people = sorted(str(p) for p in w.people[:2])
        with write_transaction():
            store.touch(w.op.id)
            store.write_states(
                w.op.id,
                [
                    DerivedState(person=people[1], group=w.groups[0], state="checked_in",
                                 reason="", conflicts=[shared, own]),
                    DerivedState(person=people[0], group=w.groups[0], state="checked_in",
                                 reason="", conflicts=[shared]),
                ],
            )  # fmt: skip
        items, total = queues.conflicts_page(w.op.id, 10)
        assert total == 3
        assert [(c["key"], c["person"]) for c in items] == [
            ("two_places:a:b", people[0]),
            ("two_places:a:b", people[1]),
            ("two_places:a:c", people[1]),
        ]
        assert items == queues._conflicts(w.op.id) == queues.conflicts(w.op.id)


def test_check_ins_that_change_no_name_do_not_compute_duplicates_again(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[int] = []
    pairs = queues.duplicate_pairs
    monkeypatch.setattr(queues, "duplicate_pairs", lambda *a: computed.append(1) or pairs(*a))
    with app.app_context(), database.connection_context():
        w = World()
        # Derived once (a first state row stores the person's name keys: an input changes).
        w.store([w.body(0, "checkin", 4, checkpoint=1, person=w.people[0], status="boarded")],
                w.received)  # fmt: skip
        assert queues.duplicates(w.op.id) == queues._duplicates(w.op.id)
        assert len(computed) == 2  # kept, then the whole computation
        w.received += dt.timedelta(seconds=5)
        w.store([w.body(1, "checkin", 5, checkpoint=2, person=w.people[0], status="boarded")],
                w.received)  # fmt: skip
        first = len(computed)
        assert queues.duplicates(w.op.id) == queues._duplicates(w.op.id)
        assert len(computed) == first + 1  # only the whole computation ran
        w.resolve(kind="merge", person=w.people[1], into=w.people[0])
        first = len(computed)
        assert queues.duplicates(w.op.id) == queues._duplicates(w.op.id)
        assert len(computed) == first + 2  # a merge changes the inputs: computed again
        # A rename (roster re-import) keeps stored name keys until a rebuild refreshes them.
        twin = Person.get_by_id(w.people[3]).full_name
        with write_transaction():
            Person.update(
                full_name=twin, updated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)
            ).where(Person.id == w.people[0]).execute()
        assert queues.duplicates(w.op.id) == queues._duplicates(w.op.id)
        with write_transaction():
            store.rebuild(w.op.id)
        first = len(computed)
        assert queues.duplicates(w.op.id) == queues._duplicates(w.op.id)
        assert len(computed) == first + 2  # stored name keys changed: computed again


def test_the_serve_warm_up_builds_the_conflict_index_before_the_first_request(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    whole_build = queues._build_conflicts
    monkeypatch.setattr(
        queues, "_build_conflicts", lambda op, key: built.append(op) or whole_build(op, key)
    )
    with app.app_context(), database.connection_context():
        w = World()
        w.store(
            [
                w.body(0, "checkin", 5, checkpoint=1, person=w.people[0], status="boarded"),
                w.body(1, "checkin", 6, checkpoint=2, person=w.people[0], status="boarded"),
            ],
            w.received,
        )
        op = w.op.id
    queues._CONFLICTS_KEPT.clear()
    thread = warm_queues(app)
    assert thread is not None
    thread.join(60)
    assert op in built
    with app.app_context(), database.connection_context():
        before = len(built)
        items, total = queues.conflicts_page(op, 50)
        assert len(built) == before  # answered from the warmed index
        assert total == 1 and items == queues._conflicts(op)
    app.config["QUEUE_WARMUP"] = False
    assert warm_queues(app) is None


def test_a_kept_duplicates_list_of_another_database_or_operation_is_never_reused(
    app: Flask,
) -> None:
    with app.app_context(), database.connection_context():
        w = World()
        with write_transaction():  # two people with the same document: one pair
            Person.update(document_key="e1234567").where(Person.id.in_(w.people[:2])).execute()
            store.touch(w.op.id)  # a change mark, as any ingest leaves: the list may be kept
        pairs = queues.duplicates(w.op.id)
        assert pairs == queues._duplicates(w.op.id) and len(pairs) == 1
        kept = queues._DUPLICATES_KEPT[w.op.id]
        # As if kept from another database whose fingerprint differs only in the mark token.
        kept.key = (kept.key[0], "another token", *kept.key[2:])
        kept.identity = ("another database", None)
        kept.inputs, kept.items = ([], {}, set()), []
        assert queues.duplicates(w.op.id) == pairs
