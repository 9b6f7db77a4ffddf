"""The console in a real browser (Debian's Chromium via Playwright) against a real server.

A coordinator finds a missing person, merges two duplicates, resolves a conflict and sees the
dashboard's counts change; a viewer cannot reach document numbers; the dashboard is
photographed at desktop and phone sizes (``artifacts/console-*.png``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from sync import Device
from tests.browser.conftest import CHROMIUM_ARGS as CHROMIUM_ARGS
from tests.browser.conftest import PHONE, admin
from tests.browser.conftest import browser as browser  # noqa: F401 - the fixture
from tests.conftest import REPO, LiveServer
from tests.console.scenario import FakeClock, build
from tests.sync.helpers import FAST_VAULT, PASSPHRASE

pytestmark = pytest.mark.sqlite_only

DESKTOP = {"width": 1280, "height": 800}
ARTIFACTS = REPO / "artifacts"


@pytest.fixture
def world(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """The scenario on the live server (SQLite only: the browser checks pages, not backends)."""
    live_server: LiveServer = request.getfixturevalue("live_server")
    clock = FakeClock()
    monkeypatch.setattr("sync.device.now_ms", clock)

    def make_device(author: str, code: str) -> Device:
        return Device.enrol(
            tmp_path / f"{author}.db",
            live_server.url,
            code,
            passphrase=PASSPHRASE,
            author=author,
            vault_params=FAST_VAULT,
        )

    data = build(lambda *a: admin(live_server, *a), make_device, tmp_path, clock)
    yield {**data, "url": live_server.url}
    for d in data["devices"]:
        d.close()


def log_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(url + "/console/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/console/operations$"))


def watch_csp(page: Any) -> list[str]:
    """Collect console messages about blocked content (the CSP must never need relaxing)."""
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security" in msg.text else 0)
    return seen


def resolve(item: Any, form: str, reason: str) -> None:
    """Fill the reason of one resolution form in a queue item and submit it."""
    target = item.locator(form)
    target.locator("input[name=reason]").fill(reason)
    target.locator("button").click()


def test_a_coordinator_resolves_a_missing_person_duplicates_and_a_conflict_and_counts_change(
    world: dict[str, Any], browser: Any
) -> None:
    url, op = world["url"], world["op"]
    ids = world["ids"]
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    blocked = watch_csp(page)
    log_in(page, url, "coord", world["staff"]["coordinator"])
    page.click("text=Kharkiv students")
    assert (page.text_content("#total-accounted"), page.text_content("#total-expected")) == (
        "8",
        "9",
    )
    counts = {
        q: page.text_content(f"#queue-{q} .n") for q in ("missing", "duplicates", "conflicts")
    }
    assert counts == {"missing": "3", "duplicates": "1", "conflicts": "1"}
    assert page.locator("svg.chart polyline").count() == 1

    # Search in another script finds the person; the roster shows both scripts. The terms are
    # posted: no address the browser asks for or sends as Referer carries them.
    page.click("nav.opnav >> text=People")
    sent: list[str] = []
    page.on("request", lambda r: sent.extend([r.url, r.headers.get("referer", "")]))
    for query, wanted in (
        ("Sato", "Kenji Sato"),
        ("Коваленко", "Олена Коваленко"),
        ("佐藤", "Kenji Sato"),
    ):
        page.fill("#q", query)
        page.click("form.filters button")
        assert page.text_content("#count") == "1 people"
        assert page.text_content("table.roster a.pname") == wanted
        assert page.url == f"{url}/console/operations/{op}/roster"
        assert page.input_value("#q") == query
    page.click("table.roster a.pname")
    page.wait_for_selector("h1.pname")
    assert len(sent) >= 8 and f"{url}/console/operations/{op}/roster" in sent
    for query in ("Sato", "Коваленко", "佐藤"):
        assert not [u for u in sent if query in u or quote(query) in u or "q=" in u], query

    # The missing queue: Amira Haddad was never seen; a coordinator confirms her by phone.
    page.goto(f"{url}/console/operations/{op}/queues/missing")
    amira = page.locator("li.item", has_text="Amira Haddad")
    assert amira.locator(".state").text_content() == "not seen"
    resolve(amira, "form:has(button[data-kind=confirm])", "Phoned her: she is on the coach")
    page.wait_for_selector(".flash.ok")
    assert page.text_content("#queue-total") == "2"

    # Duplicates side by side: keep the roster record of 张伟, merge the walk-in into it.
    page.goto(f"{url}/console/operations/{op}/queues/duplicates")
    pair = page.locator("li.item").first
    assert pair.locator(".side").count() == 2
    resolve(
        pair,
        f"form:has(input[name=into][value='{ids['张伟']}'])",
        "Same passport E12 345 67 seen at the border",
    )
    page.wait_for_selector(".flash.ok")
    assert page.text_content("#queue-total") == "0"

    # The route reversal of Maria Lopez: resolved with a reason.
    page.goto(f"{url}/console/operations/{op}/queues/conflicts")
    conflict = page.locator("li.item", has_text="Maria Lopez")
    assert conflict.locator("strong").text_content() == "route reversal"
    resolve(conflict, "form", "She went back for her bag; bus waited")
    page.wait_for_selector(".flash.ok")
    assert page.text_content("#queue-total") == "0"

    page.goto(f"{url}/console/operations/{op}")
    assert (page.text_content("#total-accounted"), page.text_content("#total-expected")) == (
        "8",
        "8",
    )
    counts = {
        q: page.text_content(f"#queue-{q} .n")
        for q in ("missing", "walkins", "duplicates", "conflicts")
    }
    assert counts == {"missing": "2", "walkins": "0", "duplicates": "0", "conflicts": "0"}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-desktop.png"), full_page=True)
    phone = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        storage_state=context.storage_state(),
    )
    small = phone.new_page()
    small.goto(f"{url}/console/operations/{op}")
    assert small.text_content("#total-accounted") == "8"
    # Nothing wider than the phone: no sideways scrolling.
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    small.screenshot(path=str(ARTIFACTS / "console-phone.png"), full_page=True)
    small.goto(f"{url}/console/operations/{op}/roster")
    small.fill("#q", "佐藤")
    small.click("form.filters button")
    assert small.text_content("#count") == "1 people"
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    small.screenshot(path=str(ARTIFACTS / "console-roster-phone.png"), full_page=True)
    assert blocked == []
    phone.close()
    context.close()


def test_a_viewer_sees_counts_but_cannot_reach_document_numbers_or_phones(
    world: dict[str, Any], browser: Any
) -> None:
    url, op, ids = world["url"], world["op"], world["ids"]
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    log_in(page, url, "viewer", world["staff"]["viewer"])
    page.goto(f"{url}/console/operations/{op}")
    assert page.text_content("#total-accounted") == "8"
    pages = [
        f"/console/operations/{op}/people/{ids['张伟']}",
        f"/console/operations/{op}/people/{ids['Amira Haddad']}",
        f"/console/operations/{op}/roster",
        f"/console/operations/{op}/queues/duplicates",
    ]
    for path in pages:
        page.goto(url + path)
        html = page.content()
        assert "E1234567" not in html and "E12 345 67" not in html, path
        assert "+380" not in html, path
        assert page.locator("button[data-kind]").count() == 0, path
    page.goto(f"{url}/console/operations/{op}/people/{ids['张伟']}")
    assert page.locator("#document").count() == 0
    assert page.locator("#phone").count() == 0
    assert page.text_content("h1.pname") == "张伟"
    assert page.text_content("p.alt") == "Zhang Wei"
    # A document number is no search key for a viewer.
    page.goto(f"{url}/console/operations/{op}/roster")
    page.fill("#q", "E1234567")
    page.click("form.filters button")
    assert page.text_content("#count") == "0 people"
    assert page.url == f"{url}/console/operations/{op}/roster"
    context.close()
