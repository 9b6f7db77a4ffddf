"""Fixtures for the reliability suites: a live server with an operation ready for devices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, free_port
from tests.reliability.helpers import SOAK, Site, first_admin_password, make_site


def pytest_configure(config: pytest.Config) -> None:
    # Until pyproject.toml lists it: the long runs `make soak` selects (MUSTER_SOAK=1).
    config.addinivalue_line(
        "markers", "soak: long reliability runs; `make soak` runs them with MUSTER_SOAK=1"
    )


@pytest.fixture
def site_server(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, Site]]:
    """A real ``muster-server serve`` with an operation; sync limits lifted only for soak runs."""
    if SOAK:
        monkeypatch.setenv("MUSTER_RATE_LIMIT_SYNC", "")
    instance = tmp_path / "live-instance"
    instance.mkdir()
    server = LiveServer(instance, db_url, free_port()).start()
    site = make_site(server.url, first_admin_password(server.output.read_text()))
    yield server, site
    server.stop()
