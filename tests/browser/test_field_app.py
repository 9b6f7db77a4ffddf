"""The field app on a phone: enrol, capture offline, survive a reload, sync exactly once."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PASSPHRASE, admin, sqlite_path
from tests.conftest import REPO, LiveServer

pytestmark = pytest.mark.sqlite_only

SCAN = "<scan>"
# (full name, alternate name, document number, what the officer types or scans)
PEOPLE = [
    ("Anna Bauer", "", "P1000001", "bauer anna"),
    ("Ivan Petrenko", "", "FA 100002", "fa-100-oo2"),
    ("张伟", "Zhang Wei", "E10000003", "wei zhang"),
    ("李小明", "Li Xiaoming", "E10000004", "小明"),
    ("王芳", "Wang Fang", "E10000005", "WANG fang"),
    ("Олена Коваленко", "", "FK100006", "olena kovalenko"),
    ("Дмитрий Иванов", "", "RU100007", "dmitriy ivanov"),
    ("Ганна Шевченко", "", "FK100008", "Ганна"),
    ("Maria Lopez", "", "X100009", SCAN),
    ("John Smith", "", "X100010", "smith"),
    ("Amira Haddad", "", "X100011", "amira"),
    ("Kenji Sato", "", "X100012", "x 100 012"),
    ("Chloé Martin", "", "X100013", "chloe"),
    ("José García", "", "X100014", "jose garcia"),
    ("Olga Novak", "", "X100015", "novak"),
    ("Pedro Alves", "", "X100016", "x100016"),
    ("Fatima Zahra", "", "X100017", "fatima"),
    ("Tomasz Nowak", "", "X100018", "tomasz"),
    ("Lucía Fernández", "", "X100019", "lucia"),
    ("欧阳娜娜", "Ouyang Nana", "E10000020", "ouyang nana"),
]


def setup_operation(server: LiveServer, tmp_path: Path) -> dict[str, Any]:
    """An operation with a checkpoint, a group and a 20-person roster; an enrolment code."""
    op = admin(server, "operation", "create", "Kharkiv students", "--timezone", "Europe/Kyiv")
    cp = admin(
        server,
        "checkpoint",
        "add",
        "--operation",
        str(op["id"]),
        "Medyka crossing",
        "--kind",
        "border",
    )
    admin(
        server,
        "group",
        "add",
        "--operation",
        str(op["id"]),
        "Bus 1",
        "--expected",
        "52",
        "--route",
        "Medyka crossing",
    )
    roster = tmp_path / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["full name", "alternate names", "document number"])
        writer.writerows(p[:3] for p in PEOPLE)
    admin(server, "roster", "import", str(roster), "--operation", str(op["id"]), "--group", "Bus 1")
    code = admin(server, "device", "code", "--operation", str(op["id"]))["code"]
    return {"op": op, "checkpoint": cp, "code": code}


def enrol(page: Any, server: LiveServer, code: str) -> None:
    """Load the app, wait for its service worker to control the page, enrol and pull."""
    page.goto(server.url + "/field/")
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=20000)
    page.fill("#enrol-code", code.lower().replace("-", " "))
    page.fill("#enrol-author", "olena")
    page.fill("#enrol-label", "Medyka phone 2")
    page.fill("#enrol-pass", PASSPHRASE)
    page.fill("#enrol-pass2", PASSPHRASE)
    page.click("#enrol-btn")
    page.wait_for_selector("#main:not([hidden])", timeout=30000)
    page.wait_for_function("document.body.dataset.sync === 'done'", timeout=30000)


def events(server: LiveServer) -> list[tuple[str, str]]:
    with sqlite3.connect(sqlite_path(server)) as db:
        return db.execute("SELECT id, kind FROM event ORDER BY seq").fetchall()


def test_twenty_offline_checkins_and_a_walkin_survive_a_reload_and_reach_the_server_once(
    field_server: LiveServer, phone: Any, tmp_path: Path
) -> None:
    setup = setup_operation(field_server, tmp_path)
    with sqlite3.connect(sqlite_path(field_server)) as db:
        maria = db.execute("SELECT id FROM person WHERE full_name = 'Maria Lopez'").fetchone()[0]
    page = phone.new_page()
    enrol(page, field_server, setup["code"])
    assert page.text_content("#checkpoint option") == "Medyka crossing"

    phone.set_offline(True)
    page.wait_for_function("!navigator.onLine")
    for name, _alt, _doc, query in PEOPLE:
        page.fill("#search", f"muster:person:{maria}" if query == SCAN else query)
        first = page.locator("#results li.card").first
        assert first.locator(".pname").text_content() == name, query
        first.locator("button.checkin").click()
        page.wait_for_selector("#results li.card.done")
    page.click("[data-tab=walkin-form]")
    page.fill("#w-name", "Walk In Visitor")
    page.fill("#w-alt", "Уолк Визитор")
    page.fill("#w-doc", "wx 123")
    page.click("#w-btn")
    page.wait_for_function("document.querySelector('#queued-count').textContent === '21'")

    page.reload()
    page.wait_for_selector("#unlock:not([hidden])")
    page.fill("#unlock-pass", "not the passphrase")
    page.click("#unlock-btn")
    page.wait_for_function("document.querySelector('#toast').textContent === 'Wrong passphrase'")
    assert page.is_hidden("#main")
    page.fill("#unlock-pass", PASSPHRASE)
    page.click("#unlock-btn")
    page.wait_for_selector("#main:not([hidden])", timeout=30000)
    assert page.text_content("#queued-count") == "21"
    page.fill("#search", "walk visitor")
    assert page.locator("#results .pname").all_text_contents() == ["Walk In Visitor"]
    page.fill("#search", "wei zhang")
    assert page.locator("#results li.card.done .pname").all_text_contents() == ["张伟"]
    page.click("[data-tab=outbox]")
    assert page.locator("#outbox-list li[data-state=queued]").count() == 21
    assert events(field_server) == []

    phone.set_offline(False)  # the "online" event starts the sync on its own
    page.wait_for_function(
        "document.querySelector('#n-sent').textContent === '21'"
        " && document.body.dataset.sync === 'done'",
        timeout=60000,
    )
    stored = events(field_server)
    assert sorted(kind for _id, kind in stored) == ["checkin"] * 20 + ["walkin"]
    assert len({event_id for event_id, _kind in stored}) == 21
    page.click("#sync")
    page.wait_for_function("document.body.dataset.sync === 'done'")
    assert len(events(field_server)) == 21
    assert page.locator("#outbox-list li[data-state=sent]").count() == 21

    page.click("#lang")
    assert page.text_content("[data-tab=outbox]") == "发件箱"
    page.click("#lang")
    assert page.text_content("[data-tab=outbox]") == "Outbox"

    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    page.click("[data-tab=find]")
    page.fill("#search", "zhang")
    page.screenshot(path=str(artifacts / "field-app-phone.png"), full_page=False)


def test_an_envelope_altered_in_the_browser_is_rejected_and_the_rest_accepted(
    field_server: LiveServer, phone: Any, tmp_path: Path
) -> None:
    setup = setup_operation(field_server, tmp_path)
    page = phone.new_page()
    enrol(page, field_server, setup["code"])
    phone.set_offline(True)
    page.wait_for_function("!navigator.onLine")
    page.click("[data-tab=headcount-form]")
    for count in ("52", "51"):
        page.fill("#h-count", count)
        page.click("#h-btn")
    page.wait_for_function("document.querySelector('#queued-count').textContent === '2'")
    page.evaluate(
        """async () => {
            const { openDB } = await import("/field/js/store.js");
            const db = await openDB();
            const tx = db.transaction("outbox", "readwrite");
            const req = tx.objectStore("outbox").get(2);
            await new Promise((ok) => { req.onsuccess = ok; });
            const entry = req.result;
            entry.envelope[entry.envelope.length - 20] ^= 0x01;
            tx.objectStore("outbox").put(entry);
            await new Promise((ok) => { tx.oncomplete = ok; });
        }"""
    )
    phone.set_offline(False)
    page.wait_for_function(
        "document.querySelector('#queued-count').textContent === '0'"
        " && document.body.dataset.sync === 'done'",
        timeout=60000,
    )
    page.click("[data-tab=outbox]")
    assert page.text_content("#n-sent") == "1"
    assert page.text_content("#n-rejected") == "1"
    reason = page.text_content("#outbox-list li[data-state=rejected] .reason") or ""
    assert reason.startswith("envelope_unauthentic: ")
    assert [kind for _id, kind in events(field_server)] == ["headcount"]
    with sqlite3.connect(sqlite_path(field_server)) as db:
        quarantined = db.execute("SELECT reason, seq FROM quarantined_record").fetchall()
    # The header of an envelope that does not authenticate is not trusted, so no seq is kept.
    assert quarantined == [("envelope_unauthentic", None)]
