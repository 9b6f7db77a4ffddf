"""Queue pages, summaries and the queue cache give the same answers as the whole computation.

The staff API pages the missing and walk-in queues in SQL, sums group summaries with one
aggregate query, and caches the cross-person queues per operation. These tests hold each of
them to the per-person rules over stored state, and check that a cached queue follows new
events and resolutions.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.db import database
from server.reconcile import queues
from server.reconcile.derive import summarise
from tests.server.test_reconcile_scenario import evacuation, get, queue, resolve  # noqa: F401


def reference_missing(op: int, now_ms: int) -> list[dict[str, Any]]:
    """The missing queue computed person by person from stored states (the original rule)."""
    rows = [s for _, s in queues.states(op) if s.state != "merged"]
    front: dict[int | None, int] = {}
    for s in rows:
        if s.route_pos is not None and s.accounted:
            front[s.group] = max(front.get(s.group, 0), s.route_pos)
    out = []
    for s in rows:
        reasons = []
        if not s.accounted:
            reasons.append(s.reason)
        elif (
            s.state in ("checked_in", "needs_assistance")
            and front.get(s.group)
            and (s.route_pos or 0) < front[s.group]
        ):
            reasons.append("not seen at the group's latest checkpoint")
        elif s.state == "checked_in" and s.last_seen_ms and now_ms - s.last_seen_ms > 12 * 3600000:
            reasons.append("not seen for 12 hours")
        if reasons:
            out.append(
                {
                    "key": f"missing:{s.person}",
                    "person": s.person,
                    "group": s.group,
                    "state": s.state,
                    "reasons": reasons,
                    "last_checkpoint": s.last_checkpoint,
                    "last_seen_ms": s.last_seen_ms,
                }
            )
    return sorted(out, key=lambda d: (d["group"] or 0, d["person"]))


def pages(client: FlaskClient, h: dict[str, str], op: int, name: str, size: int) -> list:
    """Every item of a queue, read ``size`` at a time; checks each page's total on the way."""
    whole = get(client, h, f"/api/v1/operations/{op}/discrepancies/{name}?limit=1000")
    items: list = []
    while True:
        page = get(
            client,
            h,
            f"/api/v1/operations/{op}/discrepancies/{name}?limit={size}&offset={len(items)}",
        )
        assert page["total"] == whole["total"]
        if not page["items"]:
            break
        items += page["items"]
    assert items == whole["items"]
    return items


def test_paged_queues_equal_the_whole_queue_and_the_per_person_rules(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    evacuation: dict[str, Any],  # noqa: F811
) -> None:
    h, op = admin_headers, evacuation["op"]
    missing = pages(client, h, op, "missing", 2)
    assert len(missing) == 4
    with app.app_context(), database.connection_context():
        assert missing == reference_missing(op, int(time.time() * 1000))
        walkins = [(p, s) for p, s in queues.states(op) if p.source == "walk-in"]
    assert [w["person"] for w in pages(client, h, op, "walkins", 1)] == [
        str(p.id) for p, _ in walkins
    ]
    assert len(walkins) == 3
    assert len(pages(client, h, op, "duplicates", 1)) == 4
    assert len(pages(client, h, op, "conflicts", 1)) == 1
    assert len(pages(client, h, op, "headcounts", 1)) == 1


def test_summaries_from_one_aggregate_equal_summing_every_state(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    evacuation: dict[str, Any],  # noqa: F811
) -> None:
    ev, op = evacuation, evacuation["op"]
    resolve(client, admin_headers, op, kind="merge", person=ev["k2"], into=ev["k1"], reason="same")
    with app.app_context(), database.connection_context():
        expected = summarise(s for _, s in queues.states(op))
        assert queues.summaries(op) == expected
        for gid in (ev["bus"], ev["train"]):
            assert queues.group_summary(op, gid) == expected[gid]
            assert queues.group_summary(op, gid) == summarise(
                s for _, s in queues.states(op, gid)
            ).get(gid)
    assert expected[ev["bus"]]["records"] == 52
    assert expected[None]["by_state"]["merged"] == 1


def test_a_cached_headcount_queue_follows_new_events_and_resolutions(
    client: FlaskClient,
    admin_headers: dict[str, str],
    evacuation: dict[str, Any],  # noqa: F811
) -> None:
    ev, h, op = evacuation, admin_headers, evacuation["op"]
    assert [(c["counted"], c["named"]) for c in queue(client, h, op, "headcounts")] == [(52, 49)]
    # A headcount names nobody, so only the change mark tells the cache it is stale.
    d1 = ev["devices"][0]
    d1.headcount(checkpoint=ev["cp2"], group=ev["bus"], count=7)
    assert d1.sync().accepted == 1
    counted = sorted((c["counted"], c["named"]) for c in queue(client, h, op, "headcounts"))
    assert counted == [(7, 0), (52, 49)]
    key = queue(client, h, op, "headcounts")[0]["key"]
    resolve(client, h, op, kind="resolve", key=key, reason="recounted")
    assert len(queue(client, h, op, "headcounts")) == 1
    overview = get(client, h, f"/api/v1/operations/{op}/overview")
    assert overview["queues"]["headcounts"] == 1
