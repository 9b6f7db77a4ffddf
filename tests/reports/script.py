"""The two days of the scripted evacuation, driven through real devices.

Receive times: ingest stamps the real clock, so after each sync the script moves the events
it just pushed to their scripted arrival time and sets their clock skew to 0 (``arrived_at``
updates ``Event.received_at`` and ``Event.skew_ms`` in the database).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.reports.helpers import arrived_at, local


def day_one(app: Flask, ev: dict[str, Any]) -> None:
    """Station, day 1: bus 0-7 and the train check in; bus 2 is flagged medical."""
    d1, d2, d3 = ev["devices"]
    cp1, cp2, _ = ev["cps"]
    clock = ev["clock"]
    clock.at(local(ev["day1"], 8))
    for pid in ev["bus"][:8]:
        d1.checkin(pid, checkpoint=cp1, status="boarded")
    assert d1.sync().accepted == 8
    assert arrived_at(app, local(ev["day1"], 19)) == 8
    clock.at(local(ev["day1"], 9))
    for pid in ev["train"]:
        d2.checkin(pid, checkpoint=cp1, status="boarded")
    d2.flag(ev["bus"][2], flag="medical", checkpoint=cp1)
    assert d2.sync().accepted == 5
    assert arrived_at(app, local(ev["day1"], 10)) == 5
    # Device 3 captures on day 1 but is offline until day 2: its records arrive late.
    clock.at(local(ev["day1"], 12))
    d3.checkin(ev["bus"][8], checkpoint=cp1, status="boarded")
    clock.at(local(ev["day1"], 15))
    d3.checkin(ev["bus"][0], checkpoint=cp2, status="crossed")


def day_two(app: Flask, ev: dict[str, Any]) -> None:
    """Day 2: the late records arrive; bus 0-5 reach reception; train 3 is absent."""
    d1, d2, d3 = ev["devices"]
    cp1, cp2, cp3 = ev["cps"]
    clock = ev["clock"]
    assert d3.sync().accepted == 2
    assert arrived_at(app, local(ev["day2"], 10)) == 2
    clock.at(local(ev["day2"], 9))
    for pid in ev["train"][:3]:
        d2.checkin(pid, checkpoint=cp2, status="crossed")
    d2.checkin(ev["train"][3], checkpoint=cp2, status="absent")
    assert d2.sync().accepted == 4
    assert arrived_at(app, local(ev["day2"], 12)) == 4
    clock.at(local(ev["day2"], 10))
    for pid in ev["bus"][:6]:
        d1.checkin(pid, checkpoint=cp3, status="arrived")
    assert d1.sync().accepted == 6
    assert arrived_at(app, local(ev["day2"], 18)) == 6
    # Captured before day 2's cut-off, received today: not in day 2's report.
    clock.at(local(ev["day2"], 20))
    d1.checkin(ev["bus"][6], checkpoint=cp3, status="arrived")
    assert d1.sync().accepted == 1
