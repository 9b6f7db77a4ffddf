"""The machine-readable files of a report: summary.json and the CSV tables.

CSV files are UTF-8 with a byte-order mark (so spreadsheet programs read Chinese and Cyrillic
names) and are written row by row. Column names and state values are English keys;
``summary.json`` carries the bilingual labels for them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from server.reconcile.derive import STATES
from server.reports.content import ReportData, iso_utc
from server.reports.labels import DISCREPANCY_LABELS, LABELS, STATE_LABELS

SUMMARY = "summary.json"
GROUPS = "groups.csv"
LATE = "late.csv"
PEOPLE = "people-RESTRICTED.csv"
#: Files holding personal data: coordinators and administrators only.
RESTRICTED = frozenset({PEOPLE})


def write_summary(data: ReportData, path: Path) -> None:
    """summary.json: counts and ids only, keys sorted, bilingual labels included."""
    body = {
        **data.summary,
        "labels": {
            "states": {k: list(v) for k, v in STATE_LABELS.items()},
            "discrepancies": {k: list(v) for k, v in DISCREPANCY_LABELS.items()},
            "title": list(LABELS["title"]),
        },
        "late_records": data.late,
    }
    text = json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def _writer(path: Path) -> tuple[Any, Any]:
    handle = path.open("w", encoding="utf-8-sig", newline="")
    return handle, csv.writer(handle, lineterminator="\r\n")


def write_groups(data: ReportData, path: Path) -> None:
    """groups.csv: one row per group, every state and checkpoint a column."""
    cps = sorted({c["checkpoint"] for g in data.summary["groups"] for c in g["by_checkpoint"]})
    handle, w = _writer(path)
    with handle:
        w.writerow(
            ["group", "name", "planned_size", "records", "expected", "accounted", "unaccounted"]
            + list(STATES)
            + [f"checkpoint {cp}: {data.checkpoint_names.get(cp, '')}" for cp in cps]
        )
        for g in data.summary["groups"]:
            at = {c["checkpoint"]: c["count"] for c in g["by_checkpoint"]}
            w.writerow(
                [
                    "" if g["group"] is None else g["group"],
                    g["name"],
                    g["planned_size"],
                    g["records"],
                    g["expected"],
                    g["accounted"],
                    g["unaccounted"],
                ]
                + [g["by_state"][s] for s in STATES]
                + [at.get(cp, "") for cp in cps]
            )


def write_late(data: ReportData, path: Path) -> None:
    """late.csv: each late record and the state it changed (ids, no names)."""
    columns = [
        "event",
        "device",
        "device_label",
        "seq",
        "kind",
        "person",
        "group",
        "checkpoint",
        "captured_utc",
        "received_utc",
        "reported_state",
        "corrected_state",
    ]
    handle, w = _writer(path)
    with handle:
        w.writerow(columns)
        for row in data.late:
            w.writerow(["" if row[c] is None else row[c] for c in columns])


def write_people(data: ReportData, path: Path) -> None:
    """people-RESTRICTED.csv: every person record with its state (personal data)."""
    handle, w = _writer(path)
    with handle:
        w.writerow(
            [
                "RESTRICTED",
                "person",
                "external_id",
                "full_name",
                "group",
                "group_name",
                "state",
                "reason",
                "last_checkpoint",
                "last_checkpoint_name",
                "last_seen_utc",
                "flags",
                "change_since_previous",
                "merged_into",
            ]
        )
        for pid, s in data.state.people.items():  # derive_operation yields them sorted by id
            info = data.people[pid]
            w.writerow(
                [
                    "RESTRICTED",
                    pid,
                    info.external_id,
                    info.full_name,
                    "" if s.group is None else s.group,
                    data.group_names.get(s.group, ""),
                    s.state,
                    s.reason,
                    "" if s.last_checkpoint is None else s.last_checkpoint,
                    data.checkpoint_names.get(s.last_checkpoint or -1, ""),
                    iso_utc(s.last_seen_ms),
                    ";".join(s.flags),
                    data.changes.get(pid, ""),
                    s.merged_into or "",
                ]
            )
