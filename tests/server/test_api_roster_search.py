"""Roster search over the API: the terms travel in a POST body, never in a URL.

Names and document numbers in a URL reach proxy logs, browser history and ``Referer`` headers
(the rule: no personal data in logs, URLs or error messages). ``GET .../roster?q=`` answers 400
in the one error shape without repeating the terms; ``POST .../roster/search`` (JSON page) and
``POST .../roster/search.csv`` search with the roster's filters and role rules.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import login
from tests.server.test_reconcile_scenario import add_people

#: Search terms the tests send; none may come back in an error, a header or a URL.
TERMS = ("Kovalenko", "коваленко", "张伟", "佐藤", "E1234567", "e12-345-67")


@pytest.fixture
def roster(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str], operation: dict[str, Any]
) -> dict[str, Any]:
    """Five people of Bus 1 (three scripts, one with a document) and a walk-in without group;
    a coordinator's and a viewer's headers."""
    op, bus = operation["id"], operation["group"]["id"]
    ids = add_people(
        app,
        op,
        [
            {
                "full_name": "张伟",
                "alternate_names": json.dumps(["Zhang Wei"]),
                "birth_date": dt.date(2001, 5, 4),
                "document_number": "E12 345 67",
                "phone": "+380 50 000 0001",
                "group": bus,
            },
            {"full_name": "Олена Коваленко", "group": bus},
            {"full_name": "Kenji Sato", "alternate_names": json.dumps(["佐藤健二"]), "group": bus},
            {"full_name": "Anna Bauer", "group": bus},
            {"full_name": "Ivan Kovalenko", "group": bus},
            {"full_name": "Zhang Wei", "document_number": "E1234567", "source": "walk-in"},
        ],
    )
    headers = {}
    for role in ("coordinator", "viewer"):
        resp = client.post(
            "/api/v1/staff",
            headers=admin_headers,
            json={
                "username": role,
                "role": role,
                "password": "a long enough pass",
                "operations": [op],
            },
        )
        assert resp.status_code == 201, resp.get_json()
        headers[role] = login(client, role, "a long enough pass")
    return {"op": op, "bus": bus, "ids": ids, **headers}


def search(
    client: FlaskClient, headers: dict[str, str], op: int, status: int = 200, **body: Any
) -> Any:
    resp = client.post(f"/api/v1/operations/{op}/roster/search", json=body, headers=headers)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def names(page: dict[str, Any]) -> list[str]:
    return [i["person"]["full_name"] for i in page["items"]]


def test_a_search_by_name_in_latin_cyrillic_and_chinese_is_posted_in_the_body(
    client: FlaskClient, roster: dict[str, Any]
) -> None:
    op, v = roster["op"], roster["viewer"]
    assert names(search(client, v, op, q="коваленко")) == ["Ivan Kovalenko", "Олена Коваленко"]
    assert names(search(client, v, op, q="Kovalenko")) == ["Ivan Kovalenko", "Олена Коваленко"]
    assert names(search(client, v, op, q="佐藤")) == ["Kenji Sato"]
    assert names(search(client, v, op, q="张伟")) == ["Zhang Wei", "张伟"]
    page = search(client, v, op, q="zhang wei", group=roster["bus"])
    assert (names(page), page["total"], page["limit"], page["offset"]) == (["张伟"], 1, 100, 0)
    assert page["items"][0]["state"]["state"] == "not_seen"


def test_the_search_takes_the_rosters_filters_and_paging_in_the_body(
    client: FlaskClient, roster: dict[str, Any]
) -> None:
    op, v = roster["op"], roster["viewer"]
    assert search(client, v, op)["total"] == 6
    assert names(search(client, v, op, source="walk-in")) == ["Zhang Wei"]
    assert search(client, v, op, state=["not_seen", "missing"], group=roster["bus"])["total"] == 5
    assert search(client, v, op, state=["arrived"])["total"] == 0
    page = search(client, v, op, q="kovalenko", limit=1, offset=1)
    assert (names(page), page["total"], page["limit"], page["offset"]) == (
        ["Олена Коваленко"],
        2,
        1,
        1,
    )


def test_a_coordinator_finds_a_document_number_but_a_viewer_cannot_search_by_it(
    client: FlaskClient, roster: dict[str, Any]
) -> None:
    op = roster["op"]
    found = search(client, roster["coordinator"], op, q="e12-345-67")
    assert sorted(names(found)) == ["Zhang Wei", "张伟"]
    assert {i["person"]["document_number"] for i in found["items"]} == {"E12 345 67", "E1234567"}
    assert search(client, roster["viewer"], op, q="E1234567")["total"] == 0
    assert search(client, roster["viewer"], op, q="e12-345-67")["total"] == 0
    for who, rows in (("coordinator", 3), ("viewer", 1)):
        resp = client.post(
            f"/api/v1/operations/{op}/roster/search.csv",
            json={"q": "E1234567"},
            headers=roster[who],
        )
        assert (resp.status_code, resp.mimetype) == (200, "text/csv")
        assert len(list(csv.reader(io.StringIO(resp.get_data(as_text=True))))) == rows, who


def test_the_csv_search_gives_the_rows_the_search_finds(
    client: FlaskClient, roster: dict[str, Any]
) -> None:
    op = roster["op"]
    resp = client.post(
        f"/api/v1/operations/{op}/roster/search.csv",
        json={"q": "коваленко", "group": roster["bus"]},
        headers=roster["viewer"],
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Disposition"] == f"attachment; filename=roster-{op}.csv"
    text = resp.get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["full_name"] for r in rows) == ["Ivan Kovalenko", "Олена Коваленко"]
    assert "document_number" not in rows[0] and "phone" not in rows[0]


@pytest.mark.parametrize("path", ["roster", "roster.csv"])
def test_a_search_term_in_the_url_answers_400_without_repeating_it(
    client: FlaskClient, roster: dict[str, Any], path: str
) -> None:
    op = roster["op"]
    for term in TERMS:
        for who in ("coordinator", "viewer"):
            resp = client.get(
                f"/api/v1/operations/{op}/{path}?group={roster['bus']}&q={quote(term)}",
                headers=roster[who],
            )
            assert resp.status_code == 400
            error = resp.get_json()["error"]
            assert error["code"] == "bad_request"
            assert error["details"] == {}
            assert "POST /api/v1/operations/{op}/roster/search" in error["message"]
            assert "body" in error["message"]
            raw = resp.get_data(as_text=True) + str(resp.headers)
            assert term not in raw and quote(term) not in raw, term
    # The same view without a search answers as before.
    resp = client.get(f"/api/v1/operations/{op}/{path}", headers=roster["viewer"])
    assert resp.status_code == 200


def test_the_search_body_is_validated_and_errors_repeat_no_terms(
    client: FlaskClient, roster: dict[str, Any]
) -> None:
    op, v = roster["op"], roster["viewer"]
    url = f"/api/v1/operations/{op}/roster/search"
    cases = [
        ({"q": "张伟", "stat": ["missing"]}, 422, {"stat": ["Unknown field."]}),
        ({"q": "张伟", "state": ["lost"]}, 422, None),
        ({"q": "张伟", "state": "missing"}, 422, {"state": ["Not a valid list."]}),
        ({"q": "张伟", "source": "Kovalenko"}, 422, None),
        ({"q": "张伟", "limit": 0}, 422, None),
        ({"q": "张伟", "offset": -1}, 422, None),
        ({"q": "张伟", "group": 0}, 422, None),
        ({"q": "Kovalenko" * 40}, 422, {"q": ["Longer than maximum length 300."]}),
        ({"q": "Kovalenko\x00"}, 400, None),
    ]
    for body, status, fields in cases:
        resp = client.post(url, json=body, headers=v)
        assert resp.status_code == status, body
        raw = resp.get_data(as_text=True)
        assert "张伟" not in raw and "Kovalenko" not in raw, body
        if fields is not None:
            assert resp.get_json()["error"]["details"]["fields"] == fields
    resp = client.post(url, data="q=张伟", headers=v, content_type="text/plain")
    assert resp.status_code == 415
    assert "张伟" not in resp.get_data(as_text=True)
    anonymous = client.post(url, json={"q": "张伟"})
    assert anonymous.status_code == 401


def test_the_openapi_document_describes_the_search_bodies_and_no_search_in_a_url(
    client: FlaskClient,
) -> None:
    doc = client.get("/api/openapi.json").get_json()
    base = "/api/v1/operations/{op_id}"
    for path in (f"{base}/roster", f"{base}/roster.csv"):
        params = {p["name"] for p in doc["paths"][path]["get"]["parameters"]}
        assert "q" not in params and {"group", "state", "source"} <= params, path
    body = doc["paths"][f"{base}/roster/search"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/RosterSearch"}
    csv_body = doc["paths"][f"{base}/roster/search.csv"]["post"]["requestBody"]["content"]
    assert csv_body["application/json"]["schema"] == {"$ref": "#/components/schemas/RosterFilter"}
    assert set(doc["components"]["schemas"]["RosterSearch"]["properties"]) == {
        "q",
        "group",
        "state",
        "source",
        "limit",
        "offset",
    }
    assert doc["components"]["schemas"]["RosterSearch"]["additionalProperties"] is False
