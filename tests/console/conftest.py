"""Console fixtures: the small scenario built in-process (both backends) and log-in helpers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from sync import Device
from tests.console.scenario import FakeClock, build
from tests.sync.helpers import FAST_VAULT, PASSPHRASE, wsgi_transport

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token from a console page's forms."""
    resp = client.get(path)
    assert resp.status_code == 200, resp.status_code
    found = TOKEN.search(resp.get_data(as_text=True))
    assert found is not None
    return found.group(1)


def console_login(client: FlaskClient, username: str, password: str) -> None:
    """Log in through the console's form (with its CSRF token)."""
    token = csrf_token(client, "/console/login")
    resp = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token},
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)


@pytest.fixture
def seeded(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The scenario of ``tests/console/scenario.py`` on this test's backend, in-process."""
    clock = FakeClock()
    monkeypatch.setattr("sync.device.now_ms", clock)

    def cli(*args: str) -> Any:
        result = runner.invoke(args=[*args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def make_device(author: str, code: str) -> Device:
        return Device.enrol(
            tmp_path / f"{author}.db",
            "http://muster",
            code,
            passphrase=PASSPHRASE,
            author=author,
            vault_params=FAST_VAULT,
            transport=wsgi_transport(app),
        )

    return build(cli, make_device, tmp_path, clock)
