"""The console over the Flask test client, on SQLite and PostgreSQL: sessions, CSRF, headers,
roles identical to the API's, viewers without documents, the login limit, the language."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from server.console import chart
from server.db import database
from server.models import AuditEntry, Device, Resolution
from server.staff import service
from tests.conftest import login
from tests.console.conftest import console_login, csrf_token


def search(client: FlaskClient, op: int, **form: str) -> TestResponse:
    """Post the roster's search form (with its CSRF token), as the page does."""
    token = csrf_token(client, f"/console/operations/{op}/roster")
    return client.post(f"/console/operations/{op}/roster", data={**form, "csrf_token": token})


def resolutions(app: Flask) -> list[tuple[str, str]]:
    with app.app_context(), database.connection_context():
        return [(r.kind, r.reason) for r in Resolution.select().order_by(Resolution.at_ms)]


def confirm_form(seeded: dict[str, Any], token: str | None) -> dict[str, str]:
    form = {
        "kind": "confirm",
        "person": seeded["ids"]["Amira Haddad"],
        "reason": "Phoned her: she is on the coach",
        "next": f"/console/operations/{seeded['op']}/queues/missing",
    }
    return form if token is None else {**form, "csrf_token": token}


def test_pages_need_a_login_and_carry_the_security_headers_and_cookie_flags(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    resp = client.get(f"/console/operations/{op}")
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"/console/login?next=/console/operations/{op}"
    token = csrf_token(client, "/console/login")
    resp = client.post(
        f"/console/login?next=/console/operations/{op}",
        data={"username": "coord", "password": seeded["staff"]["coordinator"], "csrf_token": token},
    )
    assert (resp.status_code, resp.headers["Location"]) == (303, f"/console/operations/{op}")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = client.get(f"/console/operations/{op}")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp and "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in page.headers
    assert "<script" not in page.get_data(as_text=True)
    style = client.get("/console/static/console.css")
    assert style.status_code == 200 and style.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in style.headers.get("Cache-Control", "")


def test_under_tls_the_session_cookie_is_secure_and_hsts_is_sent(
    app: Flask, seeded: dict[str, Any]
) -> None:
    client = app.test_client()
    base = "https://console.example"
    page = client.get("/console/login", base_url=base)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    resp = client.post(
        "/console/login",
        base_url=base,
        headers={"Referer": base + "/console/login"},
        data={
            "username": "coord",
            "password": seeded["staff"]["coordinator"],
            "csrf_token": token.group(1),
        },
    )
    assert resp.status_code == 303
    assert "; Secure" in resp.headers["Set-Cookie"]
    dash = client.get(f"/console/operations/{seeded['op']}", base_url=base)
    assert dash.status_code == 200
    assert dash.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    console_login(client, "coord", seeded["staff"]["coordinator"])
    url = f"/console/operations/{op}/resolutions"
    assert client.post(url, data=confirm_form(seeded, None)).status_code == 400
    assert client.post(url, data=confirm_form(seeded, "forged")).status_code == 400
    assert resolutions(app) == []
    login_page = client.post("/console/login", data={"username": "coord", "password": "x"})
    assert login_page.status_code == 400
    token = csrf_token(client, f"/console/operations/{op}/queues/missing")
    resp = client.post(url, data=confirm_form(seeded, token))
    assert (resp.status_code, resp.headers["Location"]) == (
        303,
        f"/console/operations/{op}/queues/missing",
    )
    assert resolutions(app) == [("confirm", "Phoned her: she is on the coach")]
    with app.app_context(), database.connection_context():
        entry = AuditEntry.get(AuditEntry.action == "resolution.confirm")
        assert (entry.reason, entry.operation_id) == ("Phoned her: she is on the coach", op)
    after = client.get(f"/console/operations/{op}/queues/missing").get_data(as_text=True)
    assert 'id="queue-total">2<' in after


def test_a_resolution_without_a_reason_is_refused_with_nothing_recorded(
    app: Flask, client: FlaskClient, seeded: dict[str, Any]
) -> None:
    console_login(client, "coord", seeded["staff"]["coordinator"])
    token = csrf_token(client, f"/console/operations/{seeded['op']}")
    form = {**confirm_form(seeded, token), "reason": "  "}
    resp = client.post(f"/console/operations/{seeded['op']}/resolutions", data=form)
    assert resp.status_code == 303
    assert resolutions(app) == []


def test_role_checks_are_the_apis(app: Flask, client: FlaskClient, seeded: dict[str, Any]) -> None:
    op = seeded["op"]
    console_login(client, "viewer", seeded["staff"]["viewer"])
    token = csrf_token(client, f"/console/operations/{op}")
    resp = client.post(f"/console/operations/{op}/resolutions", data=confirm_form(seeded, token))
    assert resp.status_code == 403
    api = client.post(
        f"/api/v1/operations/{op}/resolutions",
        json={"kind": "confirm", "person": seeded["ids"]["Amira Haddad"], "reason": "x"},
        headers=login(app.test_client(), "viewer", seeded["staff"]["viewer"]),
    )
    assert api.status_code == 403
    assert resolutions(app) == []
    assert (
        client.post(
            f"/console/operations/{op}/devices/code", data={"csrf_token": token}
        ).status_code
        == 403
    )

    coordinator = app.test_client()
    console_login(coordinator, "coord", seeded["staff"]["coordinator"])
    token = csrf_token(coordinator, f"/console/operations/{op}/devices")
    resp = coordinator.post(f"/console/operations/{op}/devices/code", data={"csrf_token": token})
    assert resp.status_code == 403

    with app.app_context(), database.connection_context():
        service.create_staff("stranger", role="coordinator", password="a long password 1")
    outsider = app.test_client()
    console_login(outsider, "stranger", "a long password 1")
    assert outsider.get(f"/console/operations/{op}").status_code == 404
    assert outsider.get(f"/console/operations/{op}/people/{seeded['walkin']}").status_code == 404
    assert "Kharkiv students" not in outsider.get("/console/operations").get_data(as_text=True)


def test_a_viewer_sees_counts_but_no_document_numbers_or_phones(
    client: FlaskClient, app: Flask, seeded: dict[str, Any]
) -> None:
    op, zhang = seeded["op"], seeded["ids"]["张伟"]
    console_login(client, "viewer", seeded["staff"]["viewer"])
    dash = client.get(f"/console/operations/{op}").get_data(as_text=True)
    assert 'id="total-accounted">8<' in dash and 'id="total-expected">9<' in dash
    for path in (
        f"/console/operations/{op}/people/{zhang}",
        f"/console/operations/{op}/roster",
        f"/console/operations/{op}/queues/duplicates",
        f"/console/operations/{op}/queues/missing",
    ):
        html = client.get(path).get_data(as_text=True)
        assert "E1234567" not in html and "E12 345 67" not in html, path
        assert "+380" not in html, path
    assert 'id="count">0 people<' in search(client, op, q="E1234567").get_data(as_text=True)
    assert 'id="count">0 people<' in search(client, op, q="e12-345-67").get_data(as_text=True)

    coordinator = app.test_client()
    console_login(coordinator, "coord", seeded["staff"]["coordinator"])
    person = coordinator.get(f"/console/operations/{op}/people/{zhang}").get_data(as_text=True)
    assert 'id="document">E1234567<' in person and 'id="phone">+380 50 000 0001<' in person
    found = search(coordinator, op, q="e12-345-67")
    assert 'id="count">2 people<' in found.get_data(as_text=True)  # the walk-in has it too


def test_names_are_searched_and_shown_in_every_script(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    console_login(client, "viewer", seeded["staff"]["viewer"])
    for query, wanted in (("佐藤", "Kenji Sato"), ("петренко", "Ivan Petrenko"), ("wei", "张伟")):
        html = search(client, op, q=query, group="1").get_data(as_text=True)
        assert 'id="count">1 people<' in html, query
        assert re.search(r'class="pname"[^>]*>([^<]+)<', html).group(1) == wanted  # type: ignore[union-attr]
    html = search(client, op, q="kenji").get_data(as_text=True)
    assert '<span class="alt">佐藤健二</span>' in html


def test_a_search_by_name_in_latin_cyrillic_or_chinese_posts_and_no_url_carries_the_terms(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    console_login(client, "coord", seeded["staff"]["coordinator"])
    page = client.get(f"/console/operations/{op}/roster").get_data(as_text=True)
    form = re.search(r'<form method="(\w+)" class="filters" action="([^"]+)"', page)
    assert form is not None and form.groups() == ("post", f"/console/operations/{op}/roster")
    for query, wanted in (
        ("Kenji", "Kenji Sato"),
        ("Коваленко", "Олена Коваленко"),
        ("佐藤", "Kenji Sato"),
    ):
        resp = search(client, op, q=query)
        assert (resp.status_code, resp.request.path) == (200, f"/console/operations/{op}/roster")
        assert resp.request.query_string == b"" and "Location" not in resp.headers
        html = resp.get_data(as_text=True)
        assert 'id="count">1 people<' in html, query
        assert re.search(r'class="pname"[^>]*>([^<]+)<', html).group(1) == wanted  # type: ignore[union-attr]
        assert f'name="q" id="q" value="{query}"' in html  # the box keeps the terms
        urls = re.findall(r'(?:href|action|src)="([^"]*)"', html)
        hidden_next = re.findall(r'name="next" value="([^"]*)"', html)
        assert len(urls) >= 8
        for url in urls + hidden_next:
            assert query not in url and quote(query) not in url and "q=" not in url, url
    # Without terms the non-personal filters go to the URL (a link one may keep).
    resp = search(client, op, q=" ", group="1", state="not_seen")
    assert (resp.status_code, resp.headers["Location"]) == (
        303,
        f"/console/operations/{op}/roster?group=1&state=not_seen",
    )
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="count">1 people<' in page  # Amira Haddad


def test_an_old_link_with_search_terms_is_sent_back_without_them(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    anonymous = client.get(f"/console/operations/{op}/roster?group=1&q=%E4%BD%90%E8%97%A4")
    assert (anonymous.status_code, anonymous.headers["Location"]) == (
        303,
        f"/console/operations/{op}/roster?group=1",
    )
    console_login(client, "viewer", seeded["staff"]["viewer"])
    resp = client.get(f"/console/operations/{op}/roster?q=Kenji", follow_redirects=True)
    assert resp.request.path == f"/console/operations/{op}/roster"
    assert resp.request.query_string == b""
    html = resp.get_data(as_text=True)
    assert "Search terms are kept out of links: use the search box." in html
    assert 'id="count">9 people<' in html and "Kenji" in html  # the whole roster, unsearched


def test_more_pages_of_a_search_are_posted_with_the_terms_in_hidden_fields(
    client: FlaskClient, seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.console.views.ROSTER_PAGE", 1)
    op = seeded["op"]
    console_login(client, "viewer", seeded["staff"]["viewer"])
    first = search(client, op, q="wei").get_data(as_text=True)
    assert 'id="count">2 people<' in first
    more = re.search(r'<form method="post" class="more" action="([^"]+)">(.*?)</form>', first, re.S)
    assert more is not None and more.group(1) == f"/console/operations/{op}/roster"
    hidden = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', more.group(2)))
    assert set(hidden) == {"csrf_token", "q", "offset"}
    assert (hidden["q"], hidden["offset"]) == ("wei", "1")
    second = client.post(more.group(1), data=hidden)
    assert second.status_code == 200
    html = second.get_data(as_text=True)
    assert 'id="count">2 people<' in html and 'class="more"' not in html
    shown = [re.findall(r'class="pname"[^>]*>([^<]+)<', page) for page in (first, html)]
    assert [len(names) for names in shown] == [1, 1]
    assert sorted(shown[0] + shown[1]) == ["Zhang Wei", "张伟"]  # the walk-in and the roster
    # Without terms, paging stays a plain link with the non-personal filters.
    listing = client.get(f"/console/operations/{op}/roster?group=1&state=not_seen,checked_in")
    link = re.search(r'<a href="([^"]+)">More</a>', listing.get_data(as_text=True))
    assert link is not None
    assert link.group(1) == (
        f"/console/operations/{op}/roster?group=1&amp;state=not_seen,checked_in&amp;offset=1"
    )


def test_the_search_page_and_its_new_messages_are_in_simplified_chinese(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    token = csrf_token(client, "/console/login")
    client.post("/console/lang", data={"lang": "zh_Hans", "next": "/", "csrf_token": token})
    console_login(client, "viewer", seeded["staff"]["viewer"])
    html = search(client, op, q="佐藤").get_data(as_text=True)
    assert 'id="count">1 人<' in html and ">筛选</button>" in html
    assert 'placeholder="任意文字的姓名"' in html  # a viewer is not offered document search
    old_link = client.get(f"/console/operations/{op}/roster?q=x", follow_redirects=True)
    assert "搜索词不会放进链接：请使用搜索框。" in old_link.get_data(as_text=True)
    token = csrf_token(client, f"/console/operations/{op}/roster")
    bad = client.post(
        f"/console/operations/{op}/roster",
        data={"q": "x", "offset": "-1", "csrf_token": token},
        follow_redirects=True,
    )
    assert "搜索表单无效，未进行搜索。" in bad.get_data(as_text=True)


def test_a_search_form_without_its_csrf_token_is_refused(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    console_login(client, "viewer", seeded["staff"]["viewer"])
    resp = client.post(f"/console/operations/{op}/roster", data={"q": "Kenji"})
    assert resp.status_code == 400
    assert "Kenji" not in resp.get_data(as_text=True)
    token = csrf_token(client, f"/console/operations/{op}/roster")
    bad = client.post(
        f"/console/operations/{op}/roster",
        data={"q": "Kenji", "state": "lost", "csrf_token": token},
    )
    assert (bad.status_code, bad.headers["Location"]) == (303, f"/console/operations/{op}/roster")


def test_login_attempts_are_limited_per_address_and_username(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    token = csrf_token(client, "/console/login")
    codes = [
        client.post(
            "/console/login",
            data={"username": "coord", "password": "wrong", "csrf_token": token},
        ).status_code
        for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]
    refused = client.post(
        "/console/login",
        data={"username": "coord", "password": seeded["staff"]["coordinator"], "csrf_token": token},
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    other = client.post(
        "/console/login",
        data={"username": "viewer", "password": seeded["staff"]["viewer"], "csrf_token": token},
    )
    assert other.status_code == 303


def test_the_language_toggle_switches_every_page_to_simplified_chinese_and_back(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    token = csrf_token(client, "/console/login")
    resp = client.post(
        "/console/lang", data={"lang": "zh_Hans", "next": "/console/login", "csrf_token": token}
    )
    assert (resp.status_code, resp.headers["Location"]) == (303, "/console/login")
    page = client.get("/console/login").get_data(as_text=True)
    assert '<html lang="zh-Hans">' in page and "<h1>登录</h1>" in page
    console_login(client, "coord", seeded["staff"]["coordinator"])
    dash = client.get(f"/console/operations/{op}").get_data(as_text=True)
    assert "待处理问题" in dash and "时间按 Europe/Kyiv 时区显示" in dash
    queue = client.get(f"/console/operations/{op}/queues/missing").get_data(as_text=True)
    assert "未在任何检查点出现" in queue and "确认已找到" in queue
    token = csrf_token(client, f"/console/operations/{op}")
    client.post(
        "/console/lang", data={"lang": "en", "next": "https://evil.example/", "csrf_token": token}
    )
    assert "Open discrepancies" in client.get(f"/console/operations/{op}").get_data(as_text=True)


def test_the_dashboard_shows_the_api_overview_and_a_curve_ending_at_the_accounted_total(
    app: Flask, client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    headers = login(app.test_client(), "coord", seeded["staff"]["coordinator"])
    overview = client.get(f"/api/v1/operations/{op}/overview", headers=headers).get_json()
    console_login(client, "coord", seeded["staff"]["coordinator"])
    html = client.get(f"/console/operations/{op}").get_data(as_text=True)
    totals = overview["totals"]
    assert (totals["accounted"], totals["expected"]) == (8, 9)
    assert f'id="total-accounted">{totals["accounted"]}<' in html
    for name, n in overview["queues"].items():
        assert f'id="queue-{name}"><span class="n{" open" if n else ""}">{n}<' in html
    assert overview["queues"] == {
        "missing": 3,
        "walkins": 1,
        "duplicates": 1,
        "conflicts": 1,
        "headcounts": 0,
        "quarantine": 0,
        "gaps": 0,
    }
    with app.app_context(), database.connection_context():
        times = chart.accounted_times(op)
    assert len(times) == 8 and times == sorted(times)
    assert html.count('<rect class="fill') == 3  # the total and two group rows


def test_devices_page_creates_a_code_with_its_qr_and_revokes_a_device(
    app: Flask, client: FlaskClient, seeded: dict[str, Any]
) -> None:
    op = seeded["op"]
    console_login(client, "boss", seeded["staff"]["admin"])
    token = csrf_token(client, f"/console/operations/{op}/devices")
    page = client.post(
        f"/console/operations/{op}/devices/code",
        data={"csrf_token": token, "label": "Medyka phone 3"},
    ).get_data(as_text=True)
    code = re.search(r'id="code">([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2})<', page)
    assert code is not None and 'class="segno"' in page
    station_id = str(seeded["devices"][0].device_id)
    no_reason = client.post(
        f"/console/operations/{op}/devices/{station_id}/revoke",
        data={"csrf_token": token, "reason": ""},
    )
    assert no_reason.status_code == 303
    revoked = client.post(
        f"/console/operations/{op}/devices/{station_id}/revoke",
        data={"csrf_token": token, "reason": "Phone lost at the station"},
    )
    assert revoked.status_code == 303
    with app.app_context(), database.connection_context():
        states = {str(d.id): d.revoked_at is not None for d in Device.select()}
        entry = AuditEntry.get(AuditEntry.action == "device.revoke")
    assert sorted(states.values()) == [False, True] and states[station_id] is True
    assert entry.reason == "Phone lost at the station"
    listing = client.get(f"/console/operations/{op}/devices").get_data(as_text=True)
    assert listing.count('<tr class="revoked">') == 1


def test_logging_out_revokes_the_session(client: FlaskClient, seeded: dict[str, Any]) -> None:
    op = seeded["op"]
    console_login(client, "coord", seeded["staff"]["coordinator"])
    saved = client.get_cookie("session")
    assert saved is not None
    token = csrf_token(client, f"/console/operations/{op}")
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 303
    # Replaying the old cookie does not bring the session back: its token was revoked.
    client.set_cookie("session", saved.value)
    assert client.get(f"/console/operations/{op}").status_code == 302
