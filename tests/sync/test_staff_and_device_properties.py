"""Property: devices capturing, pushing, pulling, losing answers and retrying, while staff
resolve, always end with each event once and derived state equal to a rebuild from scratch,
whether ingest derives before answering or leaves it to the derive backlog."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from server import changelog
from server.db import database
from server.models import Event, Person, PersonState
from server.reconcile import backlog, rebuild
from sync import Device, Offline
from tests.sync.helpers import enrol_device
from tests.sync.test_sync_properties import LossyTransport

FAULTS = st.lists(st.sampled_from(["ok", "lose_request", "lose_answer"]), max_size=3)


def _states(app: Flask, op_id: int) -> dict[str, tuple[Any, ...]]:
    with app.app_context(), database.connection_context():
        backlog.catch_up(op_id)  # what every staff read does first
        return {
            str(s.person): (s.state, s.group, s.last_checkpoint, s.reason, s.version)
            for s in PersonState.select().where(PersonState.operation == op_id)
        }


@pytest.mark.parametrize("derive", ["inline", "behind"])
def test_capture_sync_and_staff_resolutions_in_any_order_match_a_rebuild(
    derive: str,
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    app.config["DERIVE"] = derive
    counter = itertools.count()
    op_id = operation["id"]
    cps = [c["id"] for c in operation["checkpoints"]]
    roster = [uuid.uuid4() for _ in range(6)]
    with app.app_context(), database.connection_context():
        Person.insert_many(
            [
                {
                    "id": pid,
                    "operation": op_id,
                    "group": operation["group"]["id"],
                    "full_name": f"Student {n}",
                }
                for n, pid in enumerate(roster)
            ]
        ).execute()
        changelog.record(op_id, "person", roster)

    class Machine(RuleBasedStateMachine):
        devices: list[Device]
        captured: set[str]
        resolutions: int

        @initialize()
        def enrol(self) -> None:
            self.devices, self.captured, self.resolutions = [], set(), 0
            for _ in range(2):
                d = enrol_device(
                    app, client, admin_headers, op_id, tmp_path / f"prop-{next(counter)}.db"
                )
                d.transport = LossyTransport(d.transport)
                self.devices.append(d)

        @rule(
            which=st.integers(0, 1),
            person=st.integers(0, 5),
            cp=st.integers(0, 2),
            status=st.sampled_from(["boarded", "crossed", "arrived", "absent"]),
        )
        def check_in(self, which: int, person: int, cp: int, status: str) -> None:
            eid = self.devices[which].checkin(roster[person], checkpoint=cps[cp], status=status)
            self.captured.add(str(eid))

        @rule(which=st.integers(0, 1), person=st.integers(0, 5))
        def flag(self, which: int, person: int) -> None:
            self.captured.add(str(self.devices[which].flag(roster[person], flag="medical")))

        @rule(which=st.integers(0, 1), faults=FAULTS)
        def push(self, which: int, faults: list[str]) -> None:
            d = self.devices[which]
            d.transport.plan = list(faults)  # type: ignore[attr-defined]
            with contextlib.suppress(Offline):
                d.push(max_attempts=2, base_delay=0, max_delay=0)

        @rule(which=st.integers(0, 1), faults=FAULTS)
        def pull(self, which: int, faults: list[str]) -> None:
            d = self.devices[which]
            d.transport.plan = list(faults)  # type: ignore[attr-defined]
            with contextlib.suppress(Offline):
                d.pull(max_attempts=2, base_delay=0, max_delay=0)

        @precondition(lambda self: hasattr(self, "devices"))
        @rule(person=st.integers(0, 5), kind=st.sampled_from(["confirm", "declare_missing"]))
        def staff_resolve(self, person: int, kind: str) -> None:
            resp = client.post(
                f"/api/v1/operations/{op_id}/resolutions",
                headers=admin_headers,
                json={"kind": kind, "person": str(roster[person]), "reason": "checked by phone"},
            )
            assert resp.status_code == 201, resp.get_json()
            self.resolutions += 1

        def teardown(self) -> None:
            if not hasattr(self, "devices"):
                return
            for d in self.devices:
                d.transport.plan = []  # type: ignore[attr-defined]
                d.push(base_delay=0, max_delay=0)
                assert d.queued_count() == 0
                d.close()
            with app.app_context(), database.connection_context():
                ids = [
                    str(e.id)
                    for e in Event.select(Event.id).where(
                        Event.device.in_([d.device_id for d in self.devices])
                    )
                ]
            assert len(ids) == len(set(ids))
            assert set(ids) == self.captured
            incremental = _states(app, op_id)
            with app.app_context(), database.connection_context(), database.atomic():
                rebuild(op_id)
            rebuilt = _states(app, op_id)
            # People never touched by an event or resolution have no stored row: not seen.
            assert {pid: rebuilt[pid] for pid in incremental} == incremental
            assert {rebuilt[pid][0] for pid in rebuilt.keys() - incremental.keys()} <= {"not_seen"}
            summary = client.get(
                f"/api/v1/operations/{op_id}/groups/{operation['group']['id']}/summary",
                headers=admin_headers,
            ).get_json()
            assert summary["expected"] == sum(summary["by_state"].values()) - summary[
                "by_state"
            ].get("merged", 0)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
