"""``muster-server serve`` on a fresh instance: set-up, health, and the one-time password."""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from pathlib import Path

from tests.conftest import LiveServer


def test_first_start_sets_up_everything_and_prints_the_admin_password_once(
    live_server: LiveServer, backend: str
) -> None:
    with urllib.request.urlopen(live_server.url + "/healthz", timeout=5) as resp:
        health = json.loads(resp.read())
    assert health["status"] == "ok"
    assert health["database"] == backend
    assert health["schema_version"] >= 2
    first_log = live_server.output.read_text()
    assert first_log.count("password: ") == 1
    keys = Path(live_server.instance) / "keys"
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in keys.iterdir())
    live_server.stop()
    live_server.start()
    assert live_server.output.read_text().count("password: ") == 1
