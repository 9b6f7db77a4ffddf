"""The dashboard chart: people accounted for over time, cumulative, as inline SVG.

Each person accounted for now enters the curve at the first time they were seen (the
corrected capture time of their first check-in or walk-in that was not ``absent``, their merged
records included), or at the time staff confirmed them when no device saw them. The curve
therefore ends at the operation's current accounted total.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from server.models import Event, Resolution
from server.reconcile import queues, store


def accounted_times(operation_id: int) -> list[int]:
    """Sorted times (ms, corrected) at which each currently accounted person was first seen."""
    states = queues.states(operation_id)
    accounted = {s.person: s for _, s in states if s.accounted}
    roots = store.roots_of(store.links(operation_id))
    first: dict[str, int] = {}
    rows: Any = (
        Event.select(Event.person, Event.captured_ms, Event.skew_ms)
        .where(
            (Event.operation == operation_id)
            & Event.kind.in_(["checkin", "walkin"])
            & ((Event.status.is_null()) | (Event.status != "absent"))
        )
        .tuples()
    )
    for row in rows:
        person, captured, skew = tuple(row)
        root = roots.get(str(person), str(person))
        if root in accounted:
            at = int(captured) - int(skew or 0)
            first[root] = min(first.get(root, at), at)
    confirms = Resolution.select(Resolution.person, Resolution.at_ms).where(
        (Resolution.operation == operation_id)
        & (Resolution.kind == "confirm")
        & Resolution.reverted_by.is_null()
    )
    for r in confirms:
        pid = str(r.person)
        if pid in accounted:
            first.setdefault(pid, int(r.at_ms))
    for pid, s in accounted.items():
        if pid not in first and s.last_seen_ms is not None:
            first[pid] = s.last_seen_ms
    return sorted(first.values())


@dataclass(frozen=True)
class Chart:
    """Geometry of the chart in SVG user units (sized for a phone; scales up on desktops)."""

    width: int = 360
    height: int = 170
    left: int = 34
    right: int = 10
    top: int = 12
    bottom: int = 30


def svg(
    times: list[int],
    expected: int,
    tz: str,
    label: str,
    now_ms: int | None = None,
    chart: Chart = Chart(),  # noqa: B008 - frozen dataclass, never mutated
) -> Markup:
    """A step chart of the cumulative count, with the expected total as a dashed line."""
    zone = ZoneInfo(tz)
    top_value = max(expected, len(times), 1)
    w = chart.width - chart.left - chart.right
    h = chart.height - chart.top - chart.bottom
    if times:
        start = times[0]
        end = max(times[-1], now_ms or times[-1])
        span = max(end - start, 60_000)
    else:
        start, span = 0, 1

    def x(t: int) -> float:
        return chart.left + (t - start) / span * w if times else chart.left

    def y(n: int) -> float:
        return chart.top + h - n / top_value * h

    points: list[str] = [f"{x(start):.1f},{y(0):.1f}"]
    for i, t in enumerate(times, start=1):
        points.append(f"{x(t):.1f},{y(i - 1):.1f}")
        points.append(f"{x(t):.1f},{y(i):.1f}")
    if times:
        points.append(f"{chart.left + w:.1f},{y(len(times)):.1f}")
    fmt: Callable[[int], str] = lambda ms: (  # noqa: E731
        dt.datetime.fromtimestamp(ms / 1000, dt.UTC).astimezone(zone).strftime("%m-%d %H:%M")
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {chart.width} {chart.height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f'<line class="axis" x1="{chart.left}" y1="{y(0):.1f}" x2="{chart.left + w}" '
        f'y2="{y(0):.1f}"/>',
        f'<line class="axis" x1="{chart.left}" y1="{chart.top}" x2="{chart.left}" '
        f'y2="{y(0):.1f}"/>',
        f'<line class="expected" x1="{chart.left}" y1="{y(expected):.1f}" '
        f'x2="{chart.left + w}" y2="{y(expected):.1f}"/>',
        f'<text class="tick" x="{chart.left - 4}" y="{y(0) + 4:.1f}" text-anchor="end">0</text>',
        f'<text class="tick" x="{chart.left - 4}" y="{y(top_value) + 4:.1f}" '
        f'text-anchor="end">{top_value}</text>',
        f'<polyline class="line" points="{" ".join(points)}"/>',
    ]
    if times:
        parts += [
            f'<text class="tick" x="{chart.left}" y="{chart.height - 10}">{fmt(start)}</text>',
            f'<text class="tick" x="{chart.left + w}" y="{chart.height - 10}" '
            f'text-anchor="end">{fmt(start + span)}</text>',
            f'<circle class="dot" cx="{chart.left + w:.1f}" cy="{y(len(times)):.1f}" r="3"/>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))
