"""Server keys rotate under key ids; records sealed to old keys still open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from server.db import database
from server.models import CaptureSession, Event
from tests.sync.helpers import enrol_device


def test_after_rotation_old_sessions_still_open_and_new_ones_use_the_new_key(
    app: Flask,
    client: FlaskClient,
    runner: FlaskCliRunner,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    device = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "d.db")
    cp, group = operation["checkpoints"][0]["id"], operation["group"]["id"]
    old_kid = device.store.get("current_kid")
    device.headcount(checkpoint=cp, group=group, count=50)  # sealed to the old key, not sent
    result = runner.invoke(args=["keys", "rotate", "--json"])
    assert result.exit_code == 0, result.output
    new_kid = result.output.split('"current_kid": "')[1].split('"')[0]
    assert new_kid != old_kid
    report = device.sync()  # pushes the old-key record, then pulls the new key
    assert (report.accepted, report.rejected) == (1, 0)
    assert device.store.get("current_kid") == new_kid
    assert [k["kid"] for k in device.store.get("server_keys")][0] == new_kid
    device.close()
    # A new capture session (a new process, say) seals to the new key; both open.
    from sync import Device
    from tests.sync.helpers import PASSPHRASE, wsgi_transport

    again = Device.open(tmp_path / "d.db", PASSPHRASE, transport=wsgi_transport(app))
    again.headcount(checkpoint=cp, group=group, count=49)
    assert again.sync().accepted == 1
    with app.app_context(), database.connection_context():
        kids = sorted(s.server_kid for s in CaptureSession.select())
        assert kids == sorted([old_kid, new_kid])
        assert Event.select().count() == 2
