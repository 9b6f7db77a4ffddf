"""The console's reports page on SQLite and PostgreSQL: the API's listing, downloads under the
API's role rules, verification that names a tampered file, exports for coordinators only, and
the page in Simplified Chinese."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.db import database
from server.reports import integrity, service, tables
from tests.console.conftest import console_login, csrf_token

DATE = "2026-03-01"


def stored_report(app: Flask, op_id: int) -> Path:
    """A sealed report folder for one night: a summary, a group table, the per-person file."""
    from server.setup import get_keyring

    with app.app_context(), database.connection_context():
        folder = service.reports_dir() / str(op_id) / DATE
        folder.mkdir(parents=True)
        (folder / tables.SUMMARY).write_text('{"totals": {"arrived": 6}}\n', encoding="utf-8")
        (folder / tables.GROUPS).write_text("group,expected\nBus 1,8\n", encoding="utf-8")
        (folder / tables.PEOPLE).write_text("RESTRICTED,Amira Haddad,not_seen\n", encoding="utf-8")
        ring = get_keyring()
        assert ring.report_signing is not None
        integrity.seal(folder, ring.report_signing)
    return folder


def test_reports_page_lists_files_and_offers_the_restricted_one_only_to_coordinators(
    app: Flask, client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    stored_report(app, op)
    base = f"/console/operations/{op}"
    console_login(client, "viewer", seeded["staff"]["viewer"])
    page = client.get(f"{base}/reports").get_data(as_text=True)
    assert DATE in page
    links = [f"{base}/reports/{DATE}/files/{n}" for n in ("groups.csv", "summary.json")]
    assert all(f'href="{link}"' in page for link in links)
    assert f'href="{base}/reports/{DATE}/files/{tables.PEOPLE}"' not in page
    assert page.count('class="report-file"') == 4  # groups, summary, manifest, signature
    assert "Exports for partners" not in page and "/exports/" not in page
    summary = client.get(f"{base}/reports/{DATE}/files/summary.json")
    assert summary.status_code == 200
    assert summary.get_data() == b'{"totals": {"arrived": 6}}\n'
    assert client.get(f"{base}/reports/{DATE}/files/{tables.PEOPLE}").status_code == 403
    assert client.get(f"{base}/exports/pfif.xml").status_code == 403
    assert client.get(f"{base}/reports/{DATE}/files/nothing.csv").status_code == 404

    client.post("/console/logout", data={"csrf_token": csrf_token(client, f"{base}/reports")})
    console_login(client, "coord", seeded["staff"]["coordinator"])
    page = client.get(f"{base}/reports").get_data(as_text=True)
    assert f'href="{base}/reports/{DATE}/files/{tables.PEOPLE}"' in page
    assert page.count('class="report-file"') == 5
    assert page.count('class="export"') == 3
    people = client.get(f"{base}/reports/{DATE}/files/{tables.PEOPLE}")
    assert (people.status_code, people.get_data()) == (200, b"RESTRICTED,Amira Haddad,not_seen\n")
    assert people.headers["Cache-Control"] == "no-store"
    pfif = client.get(f"{base}/exports/pfif.xml")
    body = pfif.get_data(as_text=True)
    assert pfif.status_code == 200
    assert body.count("<pfif:person>") == 9 and "E1234567" not in body
    assert client.get(f"{base}/exports/roster.pdf").status_code == 404


def test_verify_shows_ok_then_names_the_tampered_and_the_missing_file(
    app: Flask, client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    folder = stored_report(app, op)
    console_login(client, "viewer", seeded["staff"]["viewer"])
    url = f"/console/operations/{op}/reports/{DATE}/verify"
    page = client.get(url).get_data(as_text=True)
    assert 'id="verify-ok"' in page and 'id="verify-failed"' not in page
    groups = folder / tables.GROUPS
    groups.write_bytes(groups.read_bytes().replace(b"8", b"9"))
    (folder / tables.SUMMARY).unlink()
    page = client.get(url).get_data(as_text=True)
    assert 'id="verify-failed"' in page and 'id="verify-ok"' not in page
    assert 'Changed file: <span class="mono">groups.csv</span>' in page
    assert 'Missing file: <span class="mono">summary.json</span>' in page
    assert "Signature:" not in page  # the manifest itself is intact and signed
    assert client.get(f"/console/operations/{op}/reports/2026-03-02/verify").status_code == 404


def test_reports_page_reads_in_simplified_chinese(
    app: Flask, client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    stored_report(app, op)
    console_login(client, "coord", seeded["staff"]["coordinator"])
    path = f"/console/operations/{op}/reports"
    client.post(
        "/console/lang",
        data={"lang": "zh_Hans", "next": path, "csrf_token": csrf_token(client, path)},
    )
    page = client.get(path).get_data(as_text=True)
    assert "供合作方的导出" in page and "校验" in page and "受限" in page
    page = client.get(f"{path}/{DATE}/verify").get_data(as_text=True)
    assert f"{DATE} 的报告完整，且由本服务器的密钥签名。" in page
