"""A small evacuation for the console tests, built through the real CLI and real devices.

Bus 1 (8 on the roster, route station -> border -> reception). Device "station" checks seven
in at the station; device "border" sees six at the border, registers a walk-in who is 张伟 again
(same document), and later the station sees Maria Lopez back at the station (a route reversal).
Amira Haddad is never seen. Expected numbers: 8 of 9 accounted for; queues missing 3,
walk-ins 1, duplicates 1, conflicts 1.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sync import Device

H = 3600 * 1000
#: full name, alternate names, document number, phone, birth date
PEOPLE = [
    ("张伟", "Zhang Wei", "E1234567", "+380 50 000 0001", "2001-05-04"),
    ("Олена Коваленко", "Olena Kovalenko", "FK100006", "+380 50 000 0002", "1999-01-02"),
    ("Anna Bauer", "", "P1000001", "", ""),
    ("Ivan Petrenko", "Іван Петренко", "FA100002", "", ""),
    ("John Smith", "", "X100010", "", ""),
    ("Maria Lopez", "", "X100009", "", ""),
    ("Kenji Sato", "佐藤健二", "X100012", "", ""),
    ("Amira Haddad", "", "X100011", "+380 50 000 0008", ""),
]
CHECKPOINTS = [
    ("Kharkiv station", "station"),
    ("Medyka crossing", "border"),
    ("Przemysl reception", "reception"),
]


class FakeClock:
    """The devices' capture clock, starting ten hours ago and moved by the script."""

    def __init__(self) -> None:
        self.t = int(time.time() * 1000) - 10 * H

    def __call__(self) -> int:
        self.t += 1000
        return self.t


Cli = Callable[..., Any]
MakeDevice = Callable[[str, str], Device]


def build(cli: Cli, make_device: MakeDevice, tmp_path: Path, clock: FakeClock) -> dict[str, Any]:
    """Create the operation, roster, staff and device activity; return ids and passwords."""
    op = cli("operation", "create", "Kharkiv students", "--timezone", "Europe/Kyiv")
    op_id = str(op["id"])
    cps = [cli("checkpoint", "add", "--operation", op_id, n, "--kind", k) for n, k in CHECKPOINTS]
    cli(
        "group",
        "add",
        "--operation",
        op_id,
        "Bus 1",
        "--expected",
        "8",
        "--route",
        ",".join(n for n, _ in CHECKPOINTS),
    )
    roster = tmp_path / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["full name", "alternate names", "document number", "phone", "birth date"])
        writer.writerows(PEOPLE)
    cli("roster", "import", str(roster), "--operation", op_id, "--group", "Bus 1")
    staff = {
        role: cli("staff", "add", name, "--role", role, "--operation", op_id)["one_time_password"]
        for name, role in (("coord", "coordinator"), ("viewer", "viewer"), ("boss", "admin"))
    }
    station = make_device("olena", cli("device", "code", "--operation", op_id)["code"])
    border = make_device("taras", cli("device", "code", "--operation", op_id)["code"])
    for d in (station, border):
        d.pull()
    ids = {p["full_name"]: p["id"] for p in station.entities("person")}
    names = [p[0] for p in PEOPLE]
    cp1, cp2, _cp3 = (c["id"] for c in cps)
    for name in names[:7]:
        clock.t += 10 * 60 * 1000
        station.checkin(ids[name], checkpoint=cp1, status="boarded")
    clock.t += 2 * H
    for name in names[:6]:
        clock.t += 5 * 60 * 1000
        border.checkin(ids[name], checkpoint=cp2, status="crossed")
    walkin = border.walkin(
        {
            "full_name": "Zhang Wei",
            "alternate_names": ["张伟"],
            "birth_date": "2001-05-04",
            "document_number": "E12 345 67",
        },
        checkpoint=cp2,
    )
    clock.t += H
    station.checkin(ids["Maria Lopez"], checkpoint=cp1, status="present")
    assert station.sync().accepted == 8
    assert border.sync().accepted == 7
    return {
        "op": op["id"],
        "checkpoints": [cp1, cp2, _cp3],
        "staff": staff,
        "devices": (station, border),
        "ids": ids,
        "walkin": str(walkin),
    }
