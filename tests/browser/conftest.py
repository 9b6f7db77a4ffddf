"""Browser fixtures: Debian's Chromium driven by Playwright, against the real server on SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 812}
PASSPHRASE = "correct horse battery staple"


def admin(server: LiveServer, *args: str) -> Any:
    """Run ``muster-server ... --json`` against the live server's instance; return its JSON."""
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args, "--json"],
        cwd=REPO,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


@pytest.fixture
def field_server(backend: str, live_server: LiveServer) -> LiveServer:
    """The live server, on SQLite only: the browser tests check the app, not the backend."""
    assert backend == "sqlite", "mark browser test modules with pytest.mark.sqlite_only"
    return live_server


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium from the system (never a downloaded one)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (install Debian's chromium to run browser tests)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A phone-sized browser context that allows service workers."""
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        service_workers="allow",
        bypass_csp=True,  # wait_for_function evaluates strings; the app itself needs no eval
    )
    # Page errors and console output appear in the report of a failing test.
    context.on("page", lambda page: page.on("console", lambda msg: print("console:", msg.text)))
    context.on("page", lambda page: page.on("pageerror", lambda err: print("pageerror:", err)))
    yield context
    context.close()


def sqlite_path(server: LiveServer) -> str:
    """The file behind the live server's ``sqlite:///`` URL."""
    return server.database_url.removeprefix("sqlite:///")
