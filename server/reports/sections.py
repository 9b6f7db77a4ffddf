"""The printable report as sections of bilingual tables, rendered alike to PDF and HTML.

Counts for everything; names only for the two lists the ministry needs (people not accounted
for, people needing assistance). Times are local to the operation, with UTC for the cut-off.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from server.models import Operation
from server.reconcile.derive import STATES
from server.reports import nights
from server.reports.content import ReportData, assistance_people, missing_people, unseen_groups
from server.reports.labels import (
    DISCREPANCY_LABELS,
    EVENT_LABELS,
    STATE_LABELS,
    both,
)

#: Longest name or label printed in a table cell; longer ones are cut with an ellipsis.
_CELL = 48


@dataclass
class Section:
    """One titled block: notes, then a table (header row and body rows), column fractions."""

    title: str
    notes: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    widths: list[float] = field(default_factory=list)


def _local(op: Operation, iso_utc: str) -> str:
    """A ``...Z`` UTC time as local ``YYYY-MM-DD HH:MM`` in the operation's zone."""
    if not iso_utc:
        return ""
    when = dt.datetime.fromisoformat(iso_utc.replace("Z", "+00:00"))
    return when.astimezone(nights.zone(op)).strftime("%Y-%m-%d %H:%M")


def _cut(text: str) -> str:
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _state(key: str) -> str:
    return both(key, STATE_LABELS)


def heading(data: ReportData, op: Operation) -> tuple[str, list[str]]:
    """The title and the lines under it (operation, night, cut-offs)."""
    s = data.summary
    lines = [
        f"{both('operation')}: {op.name}",
        f"{both('night')}: {s['date']}",
        f"{both('cutoff')}: {s['cutoff_local'][:16].replace('T', ' ')} {op.timezone}"
        f" ({s['cutoff_utc']})",
    ]
    if s["previous_cutoff_utc"]:
        lines.append(f"{both('previous_cutoff')}: {s['previous_cutoff_utc']}")
    return both("title"), lines


def build_sections(data: ReportData, op: Operation) -> list[Section]:
    """Every section of the printable report, in order."""
    s = data.summary
    t = s["totals"]
    out = [
        Section(
            both("totals"),
            header=[both("state"), both("count")],
            rows=[[both("expected"), str(t["expected"])]]
            + [[both("accounted"), str(t["accounted"])]]
            + [[both("unaccounted"), str(t["unaccounted"])]]
            + [[_state(k), str(t["by_state"][k])] for k in STATES],
            widths=[0.7, 0.3],
        ),
        Section(
            both("changes"),
            notes=[] if s["previous_cutoff_utc"] else [both("first_night")],
            header=[both("kind"), both("count")],
            rows=[
                [both("arrived_change"), str(s["changes"]["arrived"])],
                [both("newly_missing"), str(s["changes"]["newly_missing"])],
                [both("found"), str(s["changes"]["found"])],
            ],
            widths=[0.7, 0.3],
        ),
        Section(
            both("groups"),
            header=[
                both("group", sep="\n"),
                both("planned", sep="\n"),
                both("expected", sep="\n"),
                both("accounted", sep="\n"),
                both("unaccounted", sep="\n"),
                both("missing", STATE_LABELS, sep="\n"),
                both("needs_assistance", STATE_LABELS, sep="\n"),
            ],
            rows=[
                [
                    _cut(g["name"] or both("no_group")),
                    str(g["planned_size"]),
                    str(g["expected"]),
                    str(g["accounted"]),
                    str(g["unaccounted"]),
                    str(g["by_state"]["missing"]),
                    str(g["by_state"]["needs_assistance"]),
                ]
                for g in s["groups"]
            ],
            widths=[0.28, 0.12, 0.12, 0.12, 0.12, 0.12, 0.12],
        ),
        Section(
            both("by_checkpoint"),
            header=[both("group"), both("last_checkpoint"), both("count")],
            rows=[
                [
                    _cut(g["name"] or both("no_group")),
                    _cut(data.checkpoint_names.get(c["checkpoint"], str(c["checkpoint"]))),
                    str(c["count"]),
                ]
                for g in s["groups"]
                for c in g["by_checkpoint"]
            ],
            widths=[0.4, 0.4, 0.2],
        ),
        Section(
            both("discrepancies"),
            header=[both("kind"), both("count")],
            rows=[[both(k, DISCREPANCY_LABELS), str(n)] for k, n in s["discrepancies"].items()],
            widths=[0.7, 0.3],
        ),
    ]
    late = s["late"]
    effect = late["accounted_at_previous_cutoff"]
    out.append(
        Section(
            both("late") + f" ({late['count']})",
            notes=[both("late_note")]
            + (
                [f"{both('late_change')}: {effect['reported']} → {effect['corrected']}"]
                if late["count"]
                else []
            ),
            header=[
                both("captured", sep="\n"),
                both("received", sep="\n"),
                both("device", sep="\n"),
                both("kind", sep="\n"),
                both("last_checkpoint", sep="\n"),
                both("reported", sep="\n"),
                both("corrected", sep="\n"),
            ],
            rows=[
                [
                    _local(op, r["captured_utc"]),
                    _local(op, r["received_utc"]),
                    _cut(r["device_label"] or r["device"][:8]),
                    both(r["kind"], EVENT_LABELS, sep="\n"),
                    _cut(data.checkpoint_names.get(r["checkpoint"] or -1, "")),
                    both(r["reported_state"], STATE_LABELS, sep="\n") if r["person"] else "",
                    both(r["corrected_state"], STATE_LABELS, sep="\n") if r["person"] else "",
                ]
                for r in data.late
            ],
            widths=[0.15, 0.15, 0.13, 0.12, 0.15, 0.15, 0.15],
        )
    )
    silent = s["silent_devices"]
    out.append(
        Section(
            both("silent") + f" ({len(silent['devices'])})",
            notes=[both("silent_note").format(hours=f"{silent['hours']:g}")],
            header=[both("device"), both("last_contact"), both("hours"), both("received_events")],
            rows=[
                [
                    _cut(d["label"] or d["device"][:8]),
                    _local(op, d["last_contact_utc"]),
                    f"{d['hours_silent']:g}",
                    str(d["records_received"]),
                ]
                for d in silent["devices"]
            ],
            widths=[0.3, 0.3, 0.2, 0.2],
        )
    )
    missing = missing_people(data, op)
    unseen = unseen_groups(data)
    unlisted = sum(unseen.values())
    out.append(
        Section(
            both("missing_people") + f" ({len(missing) + unlisted})",
            notes=[both("unseen_groups").format(people=unlisted, groups=len(unseen))]
            if unseen
            else [],
            header=[both("name"), both("group"), both("state"), both("last_seen")],
            rows=[
                [_cut(m["name"]), _cut(m["group"]), _state(m["state"]), m["last_seen"]]
                for m in missing
            ],
            widths=[0.34, 0.22, 0.26, 0.18],
        )
    )
    assist = assistance_people(data, op)
    out.append(
        Section(
            both("assistance") + f" ({len(assist)})",
            header=[both("name"), both("group"), both("flags"), both("last_checkpoint")],
            rows=[
                [_cut(a["name"]), _cut(a["group"]), a["flags"], _cut(a["last_checkpoint"])]
                for a in assist
            ],
            widths=[0.34, 0.22, 0.2, 0.24],
        )
    )
    return out
