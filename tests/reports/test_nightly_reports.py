"""A scripted two-day evacuation through real devices, reported night by night.

Receive times: ingest stamps the real clock, so after each sync the script moves the events
it just pushed to their scripted arrival time and sets their clock skew to 0 (``arrived_at``
updates ``Event.received_at`` and ``Event.skew_ms`` in the database). Day 1 is two days ago and
day 2 yesterday, in Europe/Kyiv, with the cut-off at 21:00.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import login
from tests.reports.script import day_one, day_two

FILES = [
    "MANIFEST.sha256",
    "SIGNATURE",
    "groups.csv",
    "late.csv",
    "people-RESTRICTED.csv",
    "report.html",
    "report.pdf",
    "summary.json",
]


def snapshot_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def cli(runner: Any, *args: str) -> Any:
    return runner.invoke(args=["report", *args])


def test_two_day_evacuation_reports_are_frozen_list_late_records_and_verify(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    runner: Any,
    evacuation: dict[str, Any],
    tmp_path: Path,
) -> None:
    ev, op = evacuation, str(evacuation["id"])
    day1, day2 = ev["day1"].isoformat(), ev["day2"].isoformat()
    day_one(app, ev)
    first = cli(runner, "nightly", "--operation", op, "--date", day1, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["reports"][0]["status"] == "created"
    folder1 = Path(json.loads(first.output)["reports"][0]["folder"])
    assert sorted(p.name for p in folder1.iterdir()) == FILES
    before = snapshot_bytes(folder1)
    s1 = json.loads(before["summary.json"])
    assert (s1["totals"]["expected"], s1["totals"]["accounted"], s1["totals"]["unaccounted"]) == (
        14,
        12,
        2,
    )
    assert {k: v for k, v in s1["totals"]["by_state"].items() if v} == {
        "checked_in": 11,
        "needs_assistance": 1,
        "not_seen": 2,
    }
    assert s1["changes"] == {"arrived": 0, "newly_missing": 0, "found": 0}
    assert s1["late"]["count"] == 0 and s1["previous_cutoff_utc"] == ""
    assert [(d["label"], d["hours_silent"]) for d in s1["silent_devices"]["devices"]] == [
        ("", 15.0),
        ("", 11.0),
    ]

    day_two(app, ev)
    again = cli(runner, "nightly", "--operation", op, "--date", day1, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["reports"][0]["status"] == "unchanged"
    assert snapshot_bytes(folder1) == before
    # Made from scratch elsewhere after day 2's records: still byte-identical.
    shutil.move(folder1, tmp_path / "day1-first")
    remade = cli(runner, "nightly", "--operation", op, "--date", day1, "--json")
    assert json.loads(remade.output)["reports"][0]["status"] == "created"
    assert snapshot_bytes(folder1) == before

    second = cli(runner, "nightly", "--operation", op, "--json")  # every due night not stored
    assert second.exit_code == 0, second.output
    made = json.loads(second.output)["reports"]
    assert [r["date"] for r in made] == [day2]
    folder2 = Path(made[0]["folder"])
    s2 = json.loads((folder2 / "summary.json").read_text(encoding="utf-8"))
    assert (s2["totals"]["expected"], s2["totals"]["accounted"], s2["totals"]["unaccounted"]) == (
        14,
        12,
        2,
    )
    assert {k: v for k, v in s2["totals"]["by_state"].items() if v} == {
        "arrived": 5,
        "needs_assistance": 1,
        "checked_in": 6,
        "not_seen": 1,
        "absent": 1,
    }
    assert s2["changes"] == {"arrived": 5, "newly_missing": 1, "found": 1}
    assert s2["discrepancies"]["behind_group"] == 3
    bus = {g["name"]: g for g in s2["groups"]}["Bus 1"]
    cp1, cp2, cp3 = ev["cps"]
    assert bus["by_checkpoint"] == [
        {"checkpoint": cp1, "count": 3},
        {"checkpoint": cp2, "count": 0},
        {"checkpoint": cp3, "count": 6},
    ]
    late = s2["late_records"]
    assert [(r["kind"], r["person"], r["reported_state"], r["corrected_state"]) for r in late] == [
        ("checkin", ev["bus"][8], "not_seen", "checked_in"),
        ("checkin", ev["bus"][0], "checked_in", "checked_in"),
    ]
    assert s2["late"] == {
        "count": 2,
        "people_changed": 1,
        "accounted_at_previous_cutoff": {"reported": 1, "corrected": 2},
    }
    late_csv = (folder2 / "late.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(late_csv) == 3 and ev["bus"][8] in late_csv[1]
    assert [(d["hours_silent"]) for d in s2["silent_devices"]["devices"]] == [11.0, 9.0]
    assert [h["accounted"] for h in s2["history"]] == [12, 12]
    html = (folder2 / "report.html").read_text(encoding="utf-8")
    assert (
        "<svg" in html
        and "每晚人数报告" in html
        and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    )
    people = (folder2 / "people-RESTRICTED.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(people) == 15 and people[1].startswith("RESTRICTED,")

    ok = cli(runner, "verify", str(folder2))
    assert ok.exit_code == 0 and ok.output.startswith("OK:"), ok.output
    for name in FILES:
        copy = tmp_path / f"tampered-{name}"
        shutil.copytree(folder2, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / name).write_bytes(bytes(data))
        bad = cli(runner, "verify", str(copy), "--json")
        assert bad.exit_code == 1, name
        assert json.loads(bad.output)["changed"] == [name], (name, bad.output)
    missing = tmp_path / "missing"
    shutil.copytree(folder2, missing)
    (missing / "groups.csv").unlink()
    (missing / "extra.txt").write_text("x")
    bad = cli(runner, "verify", str(missing))
    assert bad.exit_code == 1
    assert "missing: groups.csv" in bad.output and "extra: extra.txt" in bad.output
    key = cli(runner, "public-key").output.strip()
    assert cli(runner, "verify", str(folder2), "--public-key", key).exit_code == 0

    # Staff API: viewers list and download the summary files, never the per-person file.
    listed = client.get(f"/api/v1/operations/{op}/reports", headers=admin_headers).get_json()
    assert [r["date"] for r in listed["items"]] == [day2, day1]
    assert listed["public_key"] == key
    url = f"/api/v1/operations/{op}/reports/{day2}"
    assert (
        client.get(f"{url}/files/people-RESTRICTED.csv", headers=admin_headers).status_code == 200
    )
    assert client.get(f"{url}/verify", headers=admin_headers).get_json()["ok"] is True
    assert _viewer_status(client, admin_headers, op, url) == (200, 403, 404)


def _viewer_status(
    client: FlaskClient, admin: dict[str, str], op: str, url: str
) -> tuple[int, int, int]:
    staff = client.post(
        "/api/v1/staff",
        json={
            "username": "vera",
            "password": "viewer-pass-123",
            "role": "viewer",
            "operations": [int(op)],
        },
        headers=admin,
    )
    assert staff.status_code == 201, staff.get_json()
    viewer = login(client, "vera", "viewer-pass-123")
    return (
        client.get(f"{url}/files/summary.json", headers=viewer).status_code,
        client.get(f"{url}/files/people-RESTRICTED.csv", headers=viewer).status_code,
        client.get(f"{url}/files/..%2Fsecret", headers=viewer).status_code,
    )
