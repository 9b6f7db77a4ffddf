"""Which nights an operation has reports for, and when each night's cut-off falls (UTC)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from server.errors import InvalidInput
from server.models import Operation


def zone(op: Operation) -> zoneinfo.ZoneInfo:
    """The operation's time zone (validated when the operation was made)."""
    return zoneinfo.ZoneInfo(op.timezone or "UTC")


def cutoff_local(op: Operation, day: dt.date) -> dt.datetime:
    """The aware local cut-off of ``day``: ``Operation.report_cutoff`` in the operation's zone."""
    hours, minutes = (int(x) for x in (op.report_cutoff or "21:00").split(":"))
    return dt.datetime.combine(day, dt.time(hours, minutes), tzinfo=zone(op))


def cutoff_utc(op: Operation, day: dt.date) -> dt.datetime:
    """The cut-off of ``day`` as the naive UTC datetime the database stores."""
    return cutoff_local(op, day).astimezone(dt.UTC).replace(tzinfo=None)


def first_day(op: Operation) -> dt.date:
    """The local date the operation starts on: its first report night."""
    start = op.starts_at.replace(tzinfo=dt.UTC)
    return start.astimezone(zone(op)).date()


def last_due(op: Operation, now: dt.datetime) -> dt.date | None:
    """The latest night whose cut-off has passed at ``now`` (naive UTC), or None."""
    local_today = now.replace(tzinfo=dt.UTC).astimezone(zone(op)).date()
    for day in (local_today, local_today - dt.timedelta(days=1)):
        if cutoff_utc(op, day) <= now and day >= first_day(op):
            return day
    return None


def due_nights(op: Operation, now: dt.datetime, since: dt.date | None = None) -> list[dt.date]:
    """Every night from ``since`` (default: the first) whose cut-off has passed at ``now``.

    A closed operation has nights only up to the day it closed.
    """
    last = last_due(op, now)
    if last is None:
        return []
    if op.closed_at is not None:
        closed = op.closed_at.replace(tzinfo=dt.UTC).astimezone(zone(op)).date()
        last = min(last, closed)
    day = max(since or first_day(op), first_day(op))
    out = []
    while day <= last:
        out.append(day)
        day += dt.timedelta(days=1)
    return out


def previous_night(op: Operation, day: dt.date) -> dt.date | None:
    """The night before ``day``, or None for the operation's first night."""
    prev = day - dt.timedelta(days=1)
    return prev if prev >= first_day(op) else None


def check_night(op: Operation, day: dt.date, now: dt.datetime) -> None:
    """Refuse a night before the operation or one whose cut-off has not passed yet."""
    if day < first_day(op):
        raise InvalidInput(
            f"{day.isoformat()} is before the operation starts ({first_day(op).isoformat()})."
        )
    if cutoff_utc(op, day) > now:
        raise InvalidInput(
            f"The cut-off of {day.isoformat()} ({op.report_cutoff} {op.timezone}) has not "
            "passed yet; a report can only be made for a night that is over."
        )


def parse_day(text: str) -> dt.date:
    """A YYYY-MM-DD date, or a clear error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput("Give the date as YYYY-MM-DD.") from exc
