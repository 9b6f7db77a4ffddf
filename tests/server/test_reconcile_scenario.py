"""A scripted evacuation through real devices and the staff API: exact numbers and queues,
resolutions that move them, and a rebuild that reproduces the state."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.db import database
from server.models import Person, PersonState
from server.reconcile import backlog
from tests.conftest import login
from tests.sync.helpers import enrol_device

H = 3600 * 1000


class FakeClock:
    """Device capture clock: ten hours ago, moved by the script (the transport keeps real time)."""

    def __init__(self) -> None:
        self.t = int(time.time() * 1000) - 10 * H

    def __call__(self) -> int:
        self.t += 1000
        return self.t


def add_people(app: Flask, op_id: int, rows: list[dict[str, Any]]) -> list[str]:
    from server import changelog
    from sync.normalize import document_key

    ids = []
    with app.app_context(), database.connection_context():
        for row in rows:
            pid = uuid.uuid4()
            Person.create(
                id=pid,
                operation=op_id,
                document_key=document_key(row.get("document_number", "")),
                **row,
            )
            ids.append(str(pid))
        changelog.record(op_id, "person", ids)
    return ids


def stored(app: Flask) -> dict[str, tuple]:
    with app.app_context(), database.connection_context():
        backlog.catch_up()  # as every staff read does first
        return {
            str(r.person): (
                r.group,
                r.state,
                r.reason,
                r.last_checkpoint,
                r.last_seen_ms,
                r.route_pos,
                str(r.merged_into),
                r.conflicts,
                r.flags,
                r.name_keys,
                r.event_count,
                r.version,
            )
            for r in PersonState.select()
        }


@pytest.fixture
def evacuation(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Bus 1 (52 on the roster) and Train 2 (5), three devices capturing offline."""
    op_id = operation["id"]
    cp1, cp2, _cp3 = (c["id"] for c in operation["checkpoints"])
    bus = operation["group"]["id"]
    train = client.post(
        f"/api/v1/operations/{op_id}/groups",
        headers=admin_headers,
        json={"name": "Train 2", "expected_size": 5, "route": [cp1, cp2, _cp3]},
    ).get_json()["id"]
    zhang = {
        "full_name": "张伟",
        "birth_date": dt.date(2001, 5, 4),
        "document_number": "E12 345 67",
        "phone": "+380 50 000 0001",
        "group": bus,
    }
    bus_people = add_people(
        app,
        op_id,
        [zhang] + [{"full_name": f"Student {i:03d}", "group": bus} for i in range(1, 52)],
    )
    train_people = add_people(
        app,
        op_id,
        [{"full_name": "WEI Zhang", "birth_date": dt.date(2001, 5, 4), "group": train}]
        + [{"full_name": f"Traveller {i}", "group": train} for i in range(1, 5)],
    )
    clock = FakeClock()
    monkeypatch.setattr("sync.device.now_ms", clock)
    d1 = enrol_device(app, client, admin_headers, op_id, tmp_path / "d1.db", author="olena")
    d2 = enrol_device(app, client, admin_headers, op_id, tmp_path / "d2.db", author="taras")
    d3 = enrol_device(app, client, admin_headers, op_id, tmp_path / "d3.db", author="li")
    for d in (d1, d2, d3):
        d.pull()
    # Station, morning: two devices check the bus in; person 29 is checked in on both.
    for pid in bus_people[:30]:
        d1.checkin(pid, checkpoint=cp1, status="boarded")
    for pid in bus_people[29:49]:
        d2.checkin(pid, checkpoint=cp1, status="boarded")
    for pid in train_people:
        d2.checkin(pid, checkpoint=cp1, status="boarded")
    d1.headcount(checkpoint=cp1, group=bus, count=52)
    assert d1.sync().accepted == 31
    cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    time.sleep(0.01)
    clock.t += H
    kovalenko_1 = d2.walkin(
        {"full_name": "Олена Коваленко", "birth_date": "1999-01-02"}, checkpoint=cp1
    )
    # Border, two hours later.
    clock.t += H
    for pid in bus_people[:49] + train_people:
        d3.checkin(pid, checkpoint=cp2, status="crossed")
    walk_zhang = d3.walkin(
        {"full_name": "Zhang Wei", "birth_date": "2001-05-04", "document_number": "E1234567"},
        checkpoint=cp2,
    )
    kovalenko_2 = d3.walkin(
        {"full_name": "Olena Kovalenko", "birth_date": "1999-01-02"}, checkpoint=cp2
    )
    d3.flag(bus_people[7], flag="medical", checkpoint=cp2)
    # An hour later person 5 is seen back at the station.
    clock.t += H
    d2.checkin(bus_people[5], checkpoint=cp1, status="present")
    report2, report3 = d2.sync(), d3.sync()
    assert (report2.accepted, report3.accepted) == (27, 57)
    return {
        "op": op_id,
        "bus": bus,
        "train": train,
        "cp1": cp1,
        "cp2": cp2,
        "bus_people": bus_people,
        "train_people": train_people,
        "cutoff": cutoff,
        "walk_zhang": str(walk_zhang),
        "k1": str(kovalenko_1),
        "k2": str(kovalenko_2),
        "devices": (d1, d2, d3),
    }


def get(client: FlaskClient, headers: dict[str, str], path: str) -> Any:
    resp = client.get(path, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def search(client: FlaskClient, headers: dict[str, str], op: int, q: str) -> Any:
    """The roster search (terms in the body, never the URL)."""
    resp = client.post(f"/api/v1/operations/{op}/roster/search", json={"q": q}, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def queue(client: FlaskClient, headers: dict[str, str], op: int, name: str, **args: str) -> list:
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return get(client, headers, f"/api/v1/operations/{op}/discrepancies/{name}?{query}")["items"]


def resolve(
    client: FlaskClient, headers: dict[str, str], op: int, status: int = 201, **body: Any
) -> Any:
    resp = client.post(f"/api/v1/operations/{op}/resolutions", json=body, headers=headers)
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def version(client: FlaskClient, headers: dict[str, str], op: int, pid: str) -> str:
    return get(client, headers, f"/api/v1/operations/{op}/people/{pid}/timeline")["state"][
        "version"
    ]


def test_the_scripted_evacuation_gives_exact_numbers_queues_and_resolutions(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    evacuation: dict[str, Any],
    runner: Any,
) -> None:
    ev, h, op = evacuation, admin_headers, evacuation["op"]
    bus, train, cp1, cp2 = ev["bus"], ev["train"], ev["cp1"], ev["cp2"]
    people = ev["bus_people"]
    summary = get(client, h, f"/api/v1/operations/{op}/groups/{bus}/summary")
    assert (
        summary["planned_size"],
        summary["records"],
        summary["expected"],
        summary["accounted"],
        summary["unaccounted"],
    ) == (52, 52, 52, 49, 3)
    assert {k: v for k, v in summary["by_state"].items() if v} == {
        "checked_in": 48,
        "needs_assistance": 1,
        "not_seen": 3,
    }
    assert summary["by_checkpoint"] == {str(cp1): 1, str(cp2): 48}
    overview = get(client, h, f"/api/v1/operations/{op}/overview")
    assert overview["queues"] == {
        "missing": 4,
        "walkins": 3,
        "duplicates": 4,
        "conflicts": 1,
        "headcounts": 1,
        "quarantine": 0,
        "gaps": 0,
    }
    assert (overview["totals"]["records"], overview["totals"]["accounted"]) == (60, 57)
    missing = queue(client, h, op, "missing")
    assert sorted(m["person"] for m in missing) == sorted(people[49:] + [people[5]])
    assert {m["person"]: m["reasons"] for m in missing}[people[5]] == [
        "not seen at the group's latest checkpoint"
    ]
    dups = queue(client, h, op, "duplicates")
    zhang, wei = people[0], ev["train_people"][0]
    assert [(set(d["people"]), d["score"], d["evidence"]) for d in dups] == [
        ({zhang, ev["walk_zhang"]}, 0.98, ["document_key", "name_key", "birth_date"]),
        *sorted(
            [
                ({zhang, wei}, 0.8, ["name_key", "birth_date"]),
                ({wei, ev["walk_zhang"]}, 0.8, ["name_key", "birth_date"]),
                ({ev["k1"], ev["k2"]}, 0.8, ["name_key", "birth_date"]),
            ],
            key=lambda t: "duplicate:" + ":".join(sorted(t[0])),
        ),
    ]
    assert queue(client, h, op, "headcounts")[0] | {"key": "", "event": "", "at_ms": 0} == {
        "key": "",
        "event": "",
        "at_ms": 0,
        "group": bus,
        "checkpoint": cp1,
        "counted": 52,
        "named": 49,
        "difference": 3,
    }
    conflicts = queue(client, h, op, "conflicts")
    assert [(c["person"], c["kind"]) for c in conflicts] == [(people[5], "route_reversal")]
    late = queue(client, h, op, "late", cutoff=ev["cutoff"].isoformat() + "Z", limit="1000")
    assert len(late) == 27 + 57
    timeline = get(client, h, f"/api/v1/operations/{op}/people/{people[5]}/timeline")
    assert [(t["checkpoint"], t["status"]) for t in timeline["timeline"]] == [
        (cp1, "boarded"),
        (cp2, "crossed"),
        (cp1, "present"),
    ]
    assert [t["author"] for t in timeline["timeline"]] == ["olena", "li", "taras"]
    roster = search(client, h, op, "zhang wei")
    assert sorted(i["person"]["id"] for i in roster["items"]) == sorted(
        [zhang, wei, ev["walk_zhang"]]
    )
    assert search(client, h, op, "E1234567")["total"] == 2
    assert search(client, h, op, "коваленко")["total"] == 2
    page = get(client, h, f"/api/v1/operations/{op}/roster?group={bus}&state=not_seen&limit=2")
    assert (page["total"], len(page["items"])) == (3, 2)

    # Resolve everything, watching the numbers move.
    resolve(
        client,
        h,
        op,
        kind="merge",
        person=ev["walk_zhang"],
        into=zhang,
        reason="same passport",
        based_on_version=version(client, h, op, ev["walk_zhang"]),
    )
    resolve(client, h, op, kind="merge", person=wei, into=zhang, reason="on two rosters")
    resolve(client, h, op, kind="merge", person=ev["k2"], into=ev["k1"], reason="same person")
    assert queue(client, h, op, "duplicates") == []
    resolve(
        client, h, op, kind="accept_walkin", person=ev["k1"], group=train, reason="joins the train"
    )
    assert queue(client, h, op, "walkins") == []
    head_key = queue(client, h, op, "headcounts")[0]["key"]
    resolve(client, h, op, kind="resolve", key=head_key, reason="three walked to the border")
    resolve(
        client,
        h,
        op,
        kind="resolve",
        person=people[5],
        key=conflicts[0]["key"],
        reason="went back for luggage",
    )
    resolve(client, h, op, kind="declare_missing", person=people[49], reason="no contact")
    resolve(client, h, op, kind="confirm", person=people[50], reason="safe, by phone")
    overview = get(client, h, f"/api/v1/operations/{op}/overview")
    assert overview["queues"] == {
        "missing": 3,
        "walkins": 0,
        "duplicates": 0,
        "conflicts": 0,
        "headcounts": 0,
        "quarantine": 0,
        "gaps": 0,
    }
    groups = {g["group"]: g for g in overview["groups"]}
    assert (groups[bus]["accounted"], groups[bus]["unaccounted"]) == (50, 2)
    assert {k: v for k, v in groups[bus]["by_state"].items() if v} == {
        "checked_in": 48,
        "needs_assistance": 1,
        "confirmed": 1,
        "missing": 1,
        "not_seen": 1,
    }
    assert (groups[train]["records"], groups[train]["expected"], groups[train]["accounted"]) == (
        6,
        5,
        5,
    )
    assert (groups[None]["records"], groups[None]["by_state"]["merged"]) == (2, 2)
    audit = get(client, h, f"/api/v1/operations/{op}/audit?action=resolution.")
    assert audit["total"] == 8
    assert all("Zhang" not in json.dumps(e) and "张" not in json.dumps(e) for e in audit["items"])

    # Devices learn of resolutions through pull.
    from server.models import Device as DeviceRow
    from server.pull.service import build_page

    with app.app_context(), database.connection_context():
        row = DeviceRow.get_by_id(ev["devices"][0].device_id)
        pulled = build_page(row, 0, 10000)["page"]["resolutions"]
    assert sorted(r["kind"] for r in pulled) == sorted(
        [
            "merge",
            "merge",
            "merge",
            "accept_walkin",
            "resolve",
            "resolve",
            "declare_missing",
            "confirm",
        ]
    )

    # Rebuild reproduces the incremental state exactly.
    before = stored(app)
    assert len(before) == 59  # every person touched by an event or resolution; one never was
    with app.app_context(), database.connection_context():
        PersonState.delete().execute()
    result = runner.invoke(args=["rebuild", "--operation", str(op), "--json"])
    assert result.exit_code == 0, result.output
    after = stored(app)
    assert {k: after[k] for k in before} == before
    assert get(client, h, f"/api/v1/operations/{op}/overview") == overview

    # Reverting a merge brings the pair back.
    merge_k = [
        r
        for r in get(client, h, f"/api/v1/operations/{op}/resolutions")["items"]
        if r["kind"] == "merge" and r["person"] == ev["k2"]
    ][0]
    resolve(client, h, op, kind="revert", resolution=merge_k["id"], reason="different mothers")
    assert [set(d["people"]) for d in queue(client, h, op, "duplicates")] == [{ev["k1"], ev["k2"]}]
    assert [w["person"] for w in queue(client, h, op, "walkins")] == [ev["k2"]]


def test_bad_resolutions_are_refused_and_change_nothing(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    evacuation: dict[str, Any],
) -> None:
    ev, h, op = evacuation, admin_headers, evacuation["op"]
    zhang, walk = ev["bus_people"][0], ev["walk_zhang"]
    before = stored(app)
    other = client.post("/api/v1/operations", json={"name": "Odesa"}, headers=h).get_json()
    foreign = add_people(app, other["id"], [{"full_name": "Somebody Else"}])[0]
    cases = [
        (
            {"kind": "merge", "person": zhang, "into": zhang, "reason": "x"},
            422,
            "validation_failed",
        ),
        ({"kind": "merge", "person": zhang, "into": foreign, "reason": "x"}, 404, "not_found"),
        ({"kind": "confirm", "person": str(uuid.uuid4()), "reason": "x"}, 404, "not_found"),
        (
            {"kind": "confirm", "person": zhang, "reason": "x", "based_on_version": "0" * 16},
            409,
            "stale_resolution",
        ),
        ({"kind": "move", "person": zhang, "group": 999999, "reason": "x"}, 404, "not_found"),
        (
            {"kind": "accept_walkin", "person": zhang, "group": ev["bus"], "reason": "x"},
            422,
            "validation_failed",
        ),
        (
            {"kind": "resolve", "person": zhang, "key": "route_reversal:a:b", "reason": "x"},
            404,
            "not_found",
        ),
        ({"kind": "release_quarantine", "record": 12345, "reason": "x"}, 404, "not_found"),
        ({"kind": "revert", "resolution": str(uuid.uuid4()), "reason": "x"}, 404, "not_found"),
        ({"kind": "confirm", "person": zhang}, 422, "validation_failed"),
        ({"kind": "merge", "person": zhang, "reason": "x"}, 422, "validation_failed"),
    ]
    for body, status, code in cases:
        resp = client.post(f"/api/v1/operations/{op}/resolutions", json=body, headers=h)
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (status, code), body
    assert stored(app) == before
    # A chain that would cycle: walk -> zhang, then zhang -> walk.
    resolve(client, h, op, kind="merge", person=walk, into=zhang, reason="same passport")
    after_merge = stored(app)
    resp = client.post(
        f"/api/v1/operations/{op}/resolutions",
        headers=h,
        json={"kind": "merge", "person": zhang, "into": walk, "reason": "x"},
    )
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (409, "conflict")
    resp = client.post(
        f"/api/v1/operations/{op}/resolutions",
        headers=h,
        json={"kind": "merge", "person": walk, "into": ev["train_people"][0], "reason": "x"},
    )
    assert resp.status_code == 409
    assert stored(app) == after_merge
    total = get(client, h, f"/api/v1/operations/{op}/resolutions")["total"]
    assert total == 1


def test_viewers_read_without_documents_and_cannot_resolve(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    evacuation: dict[str, Any],
) -> None:
    ev, op = evacuation, evacuation["op"]
    resp = client.post(
        "/api/v1/staff",
        headers=admin_headers,
        json={
            "username": "viewer1",
            "role": "viewer",
            "password": "a long enough pass",
            "operations": [op],
        },
    )
    assert resp.status_code == 201, resp.get_json()
    v = login(client, "viewer1", "a long enough pass")
    roster = get(client, v, f"/api/v1/operations/{op}/roster?limit=1000")
    assert roster["total"] == 60
    assert all(
        "document_number" not in i["person"] and "phone" not in i["person"] for i in roster["items"]
    )
    assert search(client, v, op, "E1234567")["total"] == 0
    csv_text = client.get(f"/api/v1/operations/{op}/roster.csv", headers=v).get_data(as_text=True)
    assert "E12 345 67" not in csv_text and "document_number" not in csv_text
    assert len(csv_text.strip().splitlines()) == 61
    full_csv = client.get(f"/api/v1/operations/{op}/roster.csv", headers=admin_headers).get_data(
        as_text=True
    )
    assert "E12 345 67" in full_csv
    resp = client.post(
        f"/api/v1/operations/{op}/resolutions",
        headers=v,
        json={"kind": "confirm", "person": ev["bus_people"][0], "reason": "x"},
    )
    assert resp.status_code == 403
    assert client.get(f"/api/v1/operations/{op}/audit", headers=v).status_code == 403
    other = client.post(
        "/api/v1/operations", json={"name": "Odesa"}, headers=admin_headers
    ).get_json()
    foreign = add_people(app, other["id"], [{"full_name": "Somebody Else"}])[0]
    for headers in (v, admin_headers):
        resp = client.get(f"/api/v1/operations/{op}/people/{foreign}/timeline", headers=headers)
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (404, "not_found")
    resp = client.get(f"/api/v1/operations/{other['id']}/overview", headers=v)
    assert resp.status_code == 404


def test_the_openapi_document_covers_every_api_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    rules = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1")}
    import re

    paths = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r) for r in rules}
    assert set(doc["paths"]) == paths
    assert len(paths) >= 25
    post = doc["paths"]["/api/v1/operations/{op_id}/resolutions"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResolutionCreate"
    }
    assert "kind" in doc["components"]["schemas"]["ResolutionCreate"]["properties"]
    create = doc["paths"]["/api/v1/operations"]["post"]
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Operation"
    }
    push = doc["paths"]["/api/v1/sync/push"]["post"]
    assert "security" not in push and "requestBody" in push
