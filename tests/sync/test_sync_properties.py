"""Property: any interleaving of captures, pushes, lost requests, lost answers and retries ends
with every outbox drained and the server holding exactly what was captured, once."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from server.db import database
from server.models import Event
from sync import Device, Offline, Transport
from tests.sync.helpers import enrol_device


class LossyTransport(Transport):
    """Real HTTP to the app, except that the next call may lose its request or its answer."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(
            inner.base_url, device_id=inner.device_id, keys=inner.keys, client=inner.client
        )
        self.plan: list[str] = []

    def call(
        self, method: str, path: str, body: Any = None, *, compress: bool = True
    ) -> dict[str, Any]:
        fault = self.plan.pop(0) if self.plan else "ok"
        if fault == "lose_request":
            raise Offline("request lost")
        answer = super().call(method, path, body, compress=compress)
        if fault == "lose_answer":
            raise Offline("answer lost")
        return answer


def _server_ids(app: Flask, device_id: uuid.UUID) -> list[str]:
    with app.app_context(), database.connection_context():
        return [str(e.id) for e in Event.select(Event.id).where(Event.device == device_id)]


def test_any_interleaving_of_capture_push_loss_and_retry_drains_exactly_once(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    counter = itertools.count()
    cp, group = operation["checkpoints"][0]["id"], operation["group"]["id"]

    class SyncMachine(RuleBasedStateMachine):
        devices: list[Device]
        captured: list[set[str]]

        @initialize()
        def enrol(self) -> None:
            self.devices, self.captured = [], []
            for _ in range(2):
                d = enrol_device(
                    app,
                    client,
                    admin_headers,
                    operation["id"],
                    tmp_path / f"dev-{next(counter)}.db",
                )
                d.transport = LossyTransport(d.transport)
                self.devices.append(d)
                self.captured.append(set())

        @rule(which=st.integers(0, 1), count=st.integers(0, 80))
        def capture(self, which: int, count: int) -> None:
            eid = self.devices[which].headcount(checkpoint=cp, group=group, count=count)
            self.captured[which].add(str(eid))

        @rule(
            which=st.integers(0, 1),
            faults=st.lists(st.sampled_from(["ok", "lose_request", "lose_answer"]), max_size=4),
        )
        def push(self, which: int, faults: list[str]) -> None:
            d = self.devices[which]
            d.transport.plan = list(faults)  # type: ignore[attr-defined]
            with contextlib.suppress(Offline):
                d.push(max_attempts=2, base_delay=0, max_delay=0)

        @rule(which=st.integers(0, 1))
        @precondition(lambda self: self.devices)
        def requeue_everything(self, which: int) -> None:
            """A device that lost its state marks everything unsent and sends it all again."""
            m = self.devices[which].store.m
            m.Outbox.update(state="queued").execute()

        @invariant()
        def nothing_sent_that_the_server_lacks(self) -> None:
            for d in getattr(self, "devices", []):
                sent = {r["event_id"] for r in d.outbox("sent")}
                assert sent <= set(_server_ids(app, d.device_id))

        def teardown(self) -> None:
            for d, captured in zip(
                getattr(self, "devices", []), getattr(self, "captured", []), strict=True
            ):
                d.transport.plan = []  # type: ignore[attr-defined]
                report = d.push(base_delay=0, max_delay=0)
                assert report.still_queued == 0 or d.queued_count() == 0
                server = _server_ids(app, d.device_id)
                assert len(server) == len(set(server))
                assert set(server) == captured
                assert {r["state"] for r in d.outbox()} <= {"sent"}
                d.close()

    run_state_machine_as_test(
        SyncMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
