"""How the console shows things: times in the operation's zone, names in every script, labels."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import get_locale
from flask_babel import lazy_gettext as N_

#: Labels of the reconciliation states and queues (the codes stay in URLs and forms).
STATE_LABELS = {
    "checked_in": N_("checked in"),
    "arrived": N_("arrived"),
    "needs_assistance": N_("needs assistance"),
    "confirmed": N_("confirmed"),
    "left": N_("left the group"),
    "not_seen": N_("not seen"),
    "absent": N_("absent"),
    "missing": N_("missing"),
    "merged": N_("merged"),
}
QUEUE_LABELS = {
    "missing": N_("Missing"),
    "walkins": N_("Walk-ins"),
    "duplicates": N_("Duplicates"),
    "conflicts": N_("Conflicts"),
    "headcounts": N_("Headcounts"),
    "late": N_("Late arrivals"),
    "quarantine": N_("Quarantine"),
    "gaps": N_("Sequence gaps"),
}
CONFLICT_LABELS = {
    "route_reversal": N_("route reversal"),
    "two_places": N_("two places at once"),
    "contradictory_status": N_("contradictory status"),
    "foreign_void": N_("void from another device"),
}
#: Reasons the services give in English that the console translates; others show as given.
REASON_LABELS = {
    "not seen at any checkpoint": N_("not seen at any checkpoint"),
    "not seen at the group's latest checkpoint": N_("not seen at the group's latest checkpoint"),
    "merged into another record": N_("merged into another record"),
}
#: Codes shown as words: roles, operation status, record sources, event and resolution kinds.
WORDS = {
    "viewer": N_("viewer"),
    "coordinator": N_("coordinator"),
    "admin": N_("administrator"),
    "active": N_("active"),
    "closed": N_("closed"),
    "roster": N_("roster"),
    "walk-in": N_("walk-in"),
    "checkin": N_("check-in"),
    "walkin": N_("walk-in registration"),
    "void": N_("void"),
    "flag": N_("flag"),
    "headcount": N_("headcount"),
    "present": N_("present"),
    "boarded": N_("boarded"),
    "crossed": N_("crossed"),
    "arrived": N_("arrived"),
    "absent": N_("absent"),
    "left": N_("left the group"),
    "medical": N_("medical"),
    "injured": N_("injured"),
    "vulnerable": N_("vulnerable"),
    "confirm": N_("confirmed by staff"),
    "declare_missing": N_("declared missing"),
    "merge": N_("merged"),
    "resolve": N_("marked resolved"),
    "move": N_("moved to a group"),
    "accept_walkin": N_("walk-in accepted"),
    "release_quarantine": N_("quarantine reviewed"),
    "revert": N_("reverted"),
}
EVIDENCE_LABELS = {
    "document_key": N_("same document"),
    "name_key": N_("same name"),
    "birth_date": N_("same birth date"),
}


def when(ms: int | None, tz: str = "UTC") -> str:
    """A millisecond UTC time as ``2026-11-28 14:05 EET`` in the zone ``tz``."""
    if ms is None:
        return "—"
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).astimezone(ZoneInfo(tz))
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def when_naive(value: dt.datetime | str | None, tz: str = "UTC") -> str:
    """A stored naive-UTC datetime (or its ISO text with ``Z``) in the zone ``tz``."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return when(int(value.timestamp() * 1000), tz)


def names(person: dict[str, Any] | None) -> list[str]:
    """The name in every script known: the full name, then alternate names not repeating it."""
    if not person:
        return []
    out = [person.get("full_name") or ""]
    for alt in person.get("alternate_names") or []:
        if alt and alt not in out:
            out.append(alt)
    return [n for n in out if n]


def label(table: dict[str, Any], code: str | None) -> str:
    """The translated label of a code, or the code itself when it has none."""
    if code is None:
        return "—"
    found = table.get(code)
    return str(found) if found is not None else code


def duration(ms: int | None) -> str:
    """A clock skew as ``+1 h 02 min`` / ``-3 s``."""
    if ms is None:
        return "—"
    sign = "-" if ms < 0 else "+"
    secs = abs(ms) // 1000
    if secs < 60:
        return f"{sign}{secs} s"
    h, m = divmod(secs // 60, 60)
    return f"{sign}{h} h {m:02d} min" if h else f"{sign}{m} min"


def init_app(app: Flask) -> None:
    """Make the helpers available to every template."""
    app.jinja_env.globals.update(
        when=when,
        when_naive=when_naive,
        names=names,
        state_label=lambda code: label(STATE_LABELS, code),
        queue_label=lambda code: label(QUEUE_LABELS, code),
        conflict_label=lambda code: label(CONFLICT_LABELS, code),
        reason_label=lambda code: label(REASON_LABELS, code),
        evidence_label=lambda code: label(EVIDENCE_LABELS, code),
        duration=duration,
        word=lambda code: label(WORDS, code),
        lang=lambda: str(get_locale() or "en"),
    )
