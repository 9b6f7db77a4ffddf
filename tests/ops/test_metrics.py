"""``/metrics``: Prometheus text with exact counts, for an admin token or a direct loopback scrape."""

from __future__ import annotations

import urllib.request
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from server.db import database
from server.models import Device
from tests.conftest import LiveServer, login


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_metrics_count_events_rejections_quarantine_and_device_marks(
    client: FlaskClient, populated: dict[str, Any]
) -> None:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    op, dev = populated["operation"]["id"], populated["device_id"]
    samples = _samples(resp.get_data(as_text=True))
    assert samples[f'muster_events_ingested_total{{operation="{op}"}}'] == 10
    assert (
        samples[f'muster_records_rejected_total{{operation="{op}",reason="envelope_malformed"}}']
        == 1
    )
    assert samples[f'muster_quarantine_size{{operation="{op}"}}'] == 1
    assert samples[f'muster_device_sequence_gap_records{{device="{dev}"}}'] == 0
    assert samples[f'muster_device_high_seq{{device="{dev}"}}'] == 10
    assert f'muster_device_last_sync_timestamp_seconds{{device="{dev}"}}' in samples
    # Ids only: no name, document or phone ever reaches a label.
    assert "Zhang" not in resp.get_data(as_text=True)


def test_metrics_count_a_gap_when_later_records_arrive_first(
    client: FlaskClient, populated: dict[str, Any]
) -> None:
    database.connect(reuse_if_open=True)
    dev = populated["device_id"]
    Device.update(high_seq=14).where(Device.id == dev).execute()
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    assert samples[f'muster_device_sequence_gap_records{{device="{dev}"}}'] == 4


def test_metrics_through_a_proxy_need_an_admin_token(
    client: FlaskClient,
    admin_headers: dict[str, str],
    runner: FlaskCliRunner,
    populated: dict[str, Any],
) -> None:
    relayed = {"X-Forwarded-For": "203.0.113.9"}
    assert client.get("/metrics", headers=relayed).status_code == 401
    assert client.get("/metrics", headers={**relayed, **admin_headers}).status_code == 200
    out = runner.invoke(args=["staff", "add", "vika", "--role", "coordinator", "--json"])
    assert out.exit_code == 0, out.output
    import json

    password = json.loads(out.stdout)["one_time_password"]
    coordinator = login(client, "vika", password)
    assert client.get("/metrics", headers={**relayed, **coordinator}).status_code == 403
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.get("/metrics", headers=bad).status_code == 401


def test_metrics_from_another_host_need_a_token_and_loopback_can_be_switched_off(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    remote = {"REMOTE_ADDR": "10.0.0.5"}
    assert client.get("/metrics", environ_base=remote).status_code == 401
    assert client.get("/metrics", environ_base=remote, headers=admin_headers).status_code == 200
    app.config["METRICS_ALLOW_LOOPBACK"] = False
    assert client.get("/metrics").status_code == 401


def test_a_real_server_answers_a_loopback_scrape(live_server: LiveServer) -> None:
    with urllib.request.urlopen(live_server.url + "/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert b"# TYPE muster_events_ingested_total counter" in resp.read()
