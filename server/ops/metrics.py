"""Prometheus metrics, read from the database so every process and host reports the same.

Labels are ids only (operation id, device id, quarantine reason code): never names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, cast

from peewee import fn

from server.db import database
from server.models import Device, Event, QuarantinedRecord
from server.reconcile import backlog

#: Tables another module may add that record report runs; counted when present.
REPORT_TABLES = ("report_run", "report")


def _rows(query: Any) -> list[tuple[Any, ...]]:
    """A query's rows as tuples (peewee's typing cannot say so itself)."""
    return list(cast(Iterable[tuple[Any, ...]], query.tuples()))


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, object], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(
            f"{name}{{{label_text}}} {_number(value)}" if labels else f"{name} {_number(value)}"
        )
    return lines


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _epoch(value: dt.datetime | None) -> float | None:
    return None if value is None else value.replace(tzinfo=dt.UTC).timestamp()


def render() -> str:
    """The whole exposition, in Prometheus text format 0.0.4."""
    out: list[str] = []
    events = _rows(Event.select(Event.operation, fn.COUNT(Event.id)).group_by(Event.operation))
    out += _family(
        "muster_events_ingested_total",
        "counter",
        "Events accepted and stored, per operation.",
        (({"operation": op}, n) for op, n in events),
    )
    rejected = _rows(
        QuarantinedRecord.select(
            QuarantinedRecord.operation, QuarantinedRecord.reason, fn.COUNT(QuarantinedRecord.id)
        ).group_by(QuarantinedRecord.operation, QuarantinedRecord.reason)
    )
    out += _family(
        "muster_records_rejected_total",
        "counter",
        "Records refused and kept in quarantine, per operation and reason code.",
        (({"operation": op if op is not None else "", "reason": r}, n) for op, r, n in rejected),
    )
    held = _rows(
        QuarantinedRecord.select(QuarantinedRecord.operation, fn.COUNT(QuarantinedRecord.id))
        .where(QuarantinedRecord.released_at.is_null())
        .group_by(QuarantinedRecord.operation)
    )
    out += _family(
        "muster_quarantine_size",
        "gauge",
        "Quarantined records not yet released by staff, per operation.",
        (({"operation": op if op is not None else ""}, n) for op, n in held),
    )
    out += _family(
        "muster_derive_backlog_events",
        "gauge",
        "Acknowledged events not yet folded into reconciliation state, per operation.",
        (({"operation": op}, n) for op, n in backlog.waiting_per_operation().items()),
    )
    devices = list(Device.select().where(Device.revoked_at.is_null()).order_by(Device.id))
    missing = _missing_per_device(devices)
    out += _family(
        "muster_device_sequence_gap_records",
        "gauge",
        "Records a device made that have not arrived although later ones have.",
        (({"device": d.id}, missing.get(str(d.id), 0)) for d in devices),
    )
    out += _family(
        "muster_device_high_seq",
        "gauge",
        "Highest sequence number received from the device.",
        (({"device": d.id}, d.high_seq) for d in devices),
    )
    out += _family(
        "muster_device_last_sync_timestamp_seconds",
        "gauge",
        "When the device last made an authenticated request (Unix time).",
        (({"device": d.id}, s) for d in devices if (s := _epoch(d.last_seen_at)) is not None),
    )
    for table in REPORT_TABLES:
        if database.table_exists(table):
            n = database.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
            out += _family(
                "muster_report_runs_total", "counter", "Nightly reports generated.", [({}, n)]
            )
            break
    return "\n".join(out) + "\n"


def _missing_per_device(devices: list[Device]) -> dict[str, int]:
    """Missing sequence numbers between each device's contiguous and high marks."""
    out: dict[str, int] = {}
    for d in devices:
        if d.high_seq <= d.contiguous_seq:
            continue
        seen = (
            Event.select(Event.seq)
            .where((Event.device == d.id) & (Event.seq > d.contiguous_seq))
            .union(
                QuarantinedRecord.select(QuarantinedRecord.seq).where(
                    (QuarantinedRecord.device == d.id)
                    & (QuarantinedRecord.seq > d.contiguous_seq)
                    & (QuarantinedRecord.seq <= d.high_seq)
                )
            )
        )
        present = len({row.seq for row in seen if row.seq is not None})
        out[str(d.id)] = d.high_seq - d.contiguous_seq - present
    return out
