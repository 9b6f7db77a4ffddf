"""Figure 7: the nightly report of a loaded operation, every format (target < 10 s).

**The data.** One operation in Europe/Kyiv over four days (nights D1-D4, cut-off 21:00). A real
``muster-server serve`` process makes the operation, its three checkpoints (station, border,
reception) and the first group on that route (``bench.common.make_operation``), and enrols
eight devices per checkpoint over HTTP (``RawDevice.enrol``, real keys). The server is then
stopped and everything else is written straight into its database in process, with the
server's own models and ``server.db.bulk_insert`` (pushing 1,000,000 events over HTTP would
take ten minutes, a 100,000-line roster import one):

* groups of 50 on the same route, and the roster: ``bench.common.roster_row`` lines stored as
  ``muster-server roster import`` stores new people (``add_roster``);
* every row is what ingest would store: the canonical body sealed by the device in a capture
  session of 1,000 records (``SealingSession``, the envelope column), the body sealed at rest
  by ``SealedTextField``, its SHA-256, per-device sequence numbers, clock skew, receive times
  from each device's sync every few minutes (one border device offline for an evening, so its
  records arrive late); capture sessions and walk-in person records as ingest writes them;
* the story: groups leave the station on days 1-4, cross the border hours later and arrive at
  reception; every person is scanned present and boarded at the station, crossed, arrived;
  headcounts at every checkpoint (some off by one); roll calls at the current checkpoint fill
  up to the event count; 1% of people are never seen, some are reported absent (a few found
  again by another device: contradictory statuses), some leave the group; flags (medical,
  injured, vulnerable, lost documents); mistaken scans voided, a few voids of another device's
  record, a few scans at the wrong checkpoint; walk-ins registered at the station (some the
  same people as roster records never seen: duplicates); staff resolutions (walk-ins accepted
  into groups, merges, confirmations, declared missing, dismissed headcounts and conflicts,
  moves, reverts, quarantine releases) and quarantined records;
* roster people, devices and the operation are backdated to the morning of D1; the event
  table's secondary indexes are dropped for the load and made again after it (same
  definitions), and SQLite gets ``ANALYZE``d.

**What is timed.** ``server.reports.service.generate`` for night D4 with D1-D3 already stored
(as the scheduler leaves them): snapshot load and derivation, ``summary.json``, the three CSV
files, the PDF, the HTML page, manifest and signature, in process on the server's database.
The folder is deleted before each run, so every run writes a new folder. The figure is the
median wall time; ``cpu_s`` gives each run's CPU time (steadier when other work shares the
cores), ``child_cpu_s`` that of the report's second process (``processes`` says whether it
had one: it derives the previous night and renders the PDF meanwhile); ``parts_s`` splits
the median run into content (load + derive), tables, PDF, HTML and seal; ``reproducible``
says whether every run gave the same manifest (byte-identical files).

Sizes: quick 5,000 people / 50,000 events; default and ``--full`` the issue's 100,000 people /
1,000,000 events (``--full`` times five runs instead of three, and also reports D1-D3). About
1.5 minutes of setup and 2-3 minutes of reports at the default size on 2 cores.

Usage: python -m bench.report [--quick|--full] [--backend sqlite|postgresql] [--runs N] [--keep]
[--reuse DIR] [--processes N] (``--runs``: timed runs; ``--keep``: leave the loaded database and
what the run needs to time it again, path on stderr; ``--reuse DIR``: time the reports of a
kept database without loading anything, same size options; on PostgreSQL only while nothing
else reset the benchmark database; ``--processes``: ``REPORT_PROCESSES``. By default the
benchmark decides as ``service.workers`` would, 2 when a core is idle, 1 otherwise, but on
what it finds when it starts (the idle cores then; ``load_at_start`` is reported): loading
the data keeps a core busy for a minute or two, which a server making its nightly report does
not have. With 2, a second process reads and derives half of the people and then renders the
PDF beside the other files, so ``parts_s`` has no ``pdf`` entry)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import resource
import shutil
import sys
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    SESSION_RECORDS,
    Operation,
    RawDevice,
    Server,
    arguments,
    emit,
    make_operation,
    median,
    pg_url,
    roster_row,
    server_for,
    size_of,
    skipped,
)
from sync.crypto import SealingSession
from sync.events import canonical_bytes, validate_body

SIZES = {
    # roster people, events, timed runs
    "quick": (5_000, 50_000, 3),
    "default": (100_000, 1_000_000, 3),
    "full": (100_000, 1_000_000, 5),
}
DAYS = 4
GROUP_SIZE = 50
DEVICES_PER_CHECKPOINT = 8
ZONE = zoneinfo.ZoneInfo("Europe/Kyiv")
MIN = 60_000
HOUR = 60 * MIN
#: Devices push every few minutes; a record is received at its device's next sync.
SYNC_EVERY_MS = 4 * MIN
#: Rows per insert transaction while loading.
LOAD_CHUNK = 5_000

# Intent fields (a plain tuple per event keeps 1,000,000 of them small).
T, DEV, KIND, PERSON, CP, STATUS, METHOD, COUNT, GROUP, FLAG, EID, REF, DETAILS = range(13)


def _ms(day: dt.date, hour: int, minute: int = 0) -> int:
    local = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZONE)
    return int(local.timestamp() * 1000)


def _naive_utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(tzinfo=None)


@dataclass
class Scenario:
    """Generates the four days of one operation as compact event intents, then stores them."""

    op_id: int
    checkpoints: list[int]
    devices: list[list[RawDevice]]  # per checkpoint
    groups: list[int]
    members: dict[int, list[str]]  # group -> roster person ids
    rows_of: dict[str, int]  # person id -> roster row number (for walk-in duplicates)
    days: list[dt.date]
    end_ms: int
    events: int
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    intents: list[tuple[Any, ...]] = field(default_factory=list)
    visits: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    walkins: list[dict[str, Any]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    never_seen: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (person, key)
    headcounts: list[tuple[str, int]] = field(default_factory=list)  # (event id, time)
    skew: dict[int, int] = field(default_factory=dict)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, t: int, dev: int, kind: str, **kw: Any) -> None:
        row: list[Any] = [t, dev, kind] + [None] * 10
        for name, value in kw.items():
            row[
                {
                    "person": PERSON,
                    "cp": CP,
                    "status": STATUS,
                    "method": METHOD,
                    "count": COUNT,
                    "group": GROUP,
                    "flag": FLAG,
                    "eid": EID,
                    "ref": REF,
                    "details": DETAILS,
                }[name]
            ] = value
        if t < self.end_ms:
            self.intents.append(tuple(row))

    def dev(self, cp: int, k: int) -> int:
        """Global device index of device ``k`` at checkpoint index ``cp``."""
        return cp * DEVICES_PER_CHECKPOINT + k % DEVICES_PER_CHECKPOINT

    def scan(self, t: int, dev: int, person: str, cp: int, status: str) -> None:
        r = self.rng.random()
        if r < 0.003:  # a mistaken scan of someone else, voided by the same device
            wrong = self.uid()
            other = self.rng.choice(self.all_people)
            self.add(
                t - 20_000,
                dev,
                "checkin",
                person=other,
                cp=cp,
                status=status,
                method="search",
                eid=wrong,
            )
            self.add(t - 10_000, dev, "void", ref=wrong)
        self.add(
            t,
            dev,
            "checkin",
            person=person,
            cp=cp,
            status=status,
            method="scan" if r < 0.85 else "search",
        )

    @property
    def all_people(self) -> list[str]:
        if not hasattr(self, "_all"):
            self._all = [p for g in self.groups for p in self.members.get(g, [])]
        return self._all

    def journeys(self) -> None:
        rng = self.rng
        for gi, gid in enumerate(self.groups):
            day = self.days[gi % DAYS]
            t0 = _ms(day, 7) + ((gi // DAYS) * 997 % 600) * MIN
            st, bo, re_ = self.dev(0, gi), self.dev(1, gi * 7 + 3), self.dev(2, gi * 5 + 1)
            t_border = t0 + 5 * HOUR + rng.randrange(4 * HOUR)
            t_arrive = t_border + 4 * HOUR + rng.randrange(3 * HOUR)
            people = list(self.members.get(gid, []))
            travelling: list[str] = []
            # Walk-ins registered at the station with this group (0.3%).
            for _ in range(sum(rng.random() < 0.003 for _ in people)):
                travelling.append(self.walkin(t0 + 25 * MIN, st, gid, gi))
            for i, pid in enumerate(people):
                r = rng.random()
                at = t0 + i * 15_000
                if r < 0.01:
                    self.never_seen.append(pid)
                    continue
                self.scan(at, st, pid, self.checkpoints[0], "present")
                if r < 0.014:  # absent at boarding, left behind
                    self.add(
                        at + 20 * MIN,
                        st,
                        "checkin",
                        person=pid,
                        cp=self.checkpoints[0],
                        status="absent",
                        method="search",
                    )
                    self.absent.append(pid)
                    continue
                if r < 0.015:  # reported absent, then found by another device
                    a, b = self.uid(), self.uid()
                    self.add(
                        at + 20 * MIN,
                        st,
                        "checkin",
                        person=pid,
                        cp=self.checkpoints[0],
                        status="absent",
                        method="search",
                        eid=a,
                    )
                    self.add(
                        at + 35 * MIN,
                        self.dev(0, gi + 1),
                        "checkin",
                        person=pid,
                        cp=self.checkpoints[0],
                        status="boarded",
                        method="scan",
                        eid=b,
                    )
                    self.conflicts.append((pid, "contradictory_status:" + ":".join(sorted((a, b)))))
                else:
                    self.scan(at + 30 * MIN, st, pid, self.checkpoints[0], "boarded")
                travelling.append(pid)
            boarded = len(travelling)
            self.headcount(t0 + 50 * MIN, st, 0, gid, boarded)
            self.visit_all(travelling, 0, st, t0 + 60 * MIN, t_border)
            crossing: list[str] = []
            for i, pid in enumerate(travelling):
                self.scan(t_border + i * 20_000, bo, pid, self.checkpoints[1], "crossed")
                if rng.random() < 0.002:  # picked up by family after the border
                    self.add(
                        t_border + 40 * MIN,
                        bo,
                        "checkin",
                        person=pid,
                        cp=self.checkpoints[1],
                        status="left",
                        method="manual",
                    )
                    continue
                crossing.append(pid)
                if rng.random() < 0.001:  # a station device scans them again by mistake
                    self.add(
                        t_border + i * 20_000 + rng.choice((5 * MIN, 2 * HOUR)),
                        self.dev(0, gi + 2),
                        "checkin",
                        person=pid,
                        cp=self.checkpoints[0],
                        status="present",
                        method="search",
                    )
            self.headcount(t_border + 30 * MIN, bo, 1, gid, len(crossing))
            self.visit_all(crossing, 1, bo, t_border + 40 * MIN, t_arrive)
            for i, pid in enumerate(crossing):
                self.scan(t_arrive + i * 10_000, re_, pid, self.checkpoints[2], "arrived")
            self.headcount(t_arrive + 20 * MIN, re_, 2, gid, len(crossing))
            self.visit_all(crossing, 2, re_, t_arrive + 30 * MIN, self.end_ms)

    def visit_all(self, people: list[str], cp: int, dev: int, start: int, end: int) -> None:
        for pid in people:
            self.visits.append((pid, cp, dev, start, end))

    def headcount(self, t: int, dev: int, cp: int, gid: int, count: int) -> None:
        eid = self.uid()
        off = self.rng.random()
        counted = count + (1 if off < 0.04 else -1 if off < 0.08 else 0)
        self.add(
            t, dev, "headcount", cp=self.checkpoints[cp], group=gid, count=max(0, counted), eid=eid
        )
        if counted != count:
            self.headcounts.append((eid, t))

    def walkin(self, t: int, dev: int, gid: int, gi: int) -> str:
        """A person registered on the spot; a tenth are roster people never scanned."""
        rng = self.rng
        pid = self.uid()
        if self.never_seen and rng.random() < 0.1:
            dup = self.rng.choice(self.never_seen)
            row = roster_row(self.rows_of[dup], len(self.groups))
            self.walkins.append({"id": pid, "duplicate_of": dup, "t": t})
        else:
            row = roster_row(10_000_000 + len(self.walkins), len(self.groups))
            self.walkins.append({"id": pid, "duplicate_of": None, "t": t})
        details: dict[str, Any] = {
            "full_name": row[1],
            "sex": row[3],
            "birth_date": row[4],
            "document_type": "passport",
            "document_number": row[5],
            "phone": row[6],
        }
        if row[2]:
            details["alternate_names"] = [row[2]]
        if rng.random() < 0.5:
            details["group"] = gid
        else:
            self.walkins[-1]["group"] = gid
        self.add(
            t,
            dev,
            "walkin",
            person=pid,
            cp=self.checkpoints[0],
            status="boarded",
            method="walk-in",
            details=details,
        )
        return pid

    def flags(self) -> None:
        """1% of travellers flagged at some point of their journey; a few flags voided."""
        rng = self.rng
        kinds = ["medical"] * 8 + ["injured"] * 3 + ["vulnerable"] * 5 + ["lost-documents"] * 3
        kinds.append("other")
        for pid, cp, dev, start, end in self.visits:
            if end - start < 30 * MIN or rng.random() >= 0.01 / 3:
                continue
            t = rng.randrange(start + 15 * MIN, end - 15 * MIN)
            eid = self.uid()
            self.add(
                t, dev, "flag", person=pid, flag=rng.choice(kinds), cp=self.checkpoints[cp], eid=eid
            )
            if rng.random() < 0.1:
                self.add(t + 5 * MIN, dev, "void", ref=eid)

    def roll_calls(self) -> None:
        """Present scans at the current checkpoint until there are ``events`` events."""
        rng = self.rng
        usable = [v for v in self.visits if min(v[4], self.end_ms) - v[3] > 40 * MIN]
        needed = self.events - len(self.intents) - 20  # room for the foreign voids
        for _ in range(max(0, needed)):
            pid, cp, dev, start, end = usable[rng.randrange(len(usable))]
            t = rng.randrange(start + 15 * MIN, min(end, self.end_ms) - 15 * MIN)
            self.add(
                t,
                dev,
                "checkin",
                person=pid,
                cp=self.checkpoints[cp],
                status="present",
                method="scan" if rng.random() < 0.9 else "search",
            )

    def foreign_voids(self) -> None:
        """A few voids aimed at another device's record (they retract nothing)."""
        scans = [i for i, it in enumerate(self.intents) if it[KIND] == "checkin"]
        for i in self.rng.sample(scans, min(10, len(scans))):
            it = list(self.intents[i])
            it[EID] = self.uid()
            self.intents[i] = tuple(it)
            dev = (it[DEV] + DEVICES_PER_CHECKPOINT) % len(self.skew)
            self.add(it[T] + 30 * MIN, dev, "void", ref=it[EID])

    def body(self, it: tuple[Any, ...], captured: int, author: str) -> dict[str, Any]:
        kind = it[KIND]
        out: dict[str, Any] = {"v": 1, "kind": kind, "op": self.op_id, "at": captured}
        out["author"] = author
        if kind == "checkin":
            out.update(person=it[PERSON], checkpoint=it[CP], status=it[STATUS], method=it[METHOD])
        elif kind == "walkin":
            out.update(person=it[PERSON], checkpoint=it[CP], status=it[STATUS], method=it[METHOD])
            out["details"] = it[DETAILS]
        elif kind == "headcount":
            out.update(checkpoint=it[CP], group=it[GROUP], count=it[COUNT])
        elif kind == "flag":
            out.update(person=it[PERSON], flag=it[FLAG], checkpoint=it[CP])
        else:
            out["ref"] = it[REF]
        return out

    def received(self, dev: int, t: int, offline: tuple[int, int, int]) -> int:
        """When a record captured at ``t`` reaches the server: the device's next sync."""
        off_dev, off_from, off_to = offline
        if dev == off_dev and off_from <= t < off_to:
            t = off_to  # the evening's records go out with the first sync next morning
        phase = (dev * 37_003) % SYNC_EVERY_MS
        slot = -(-(t + 2_000 - phase) // SYNC_EVERY_MS)
        at = phase + slot * SYNC_EVERY_MS + (dev * 7919 + slot * 104_729) % 3_000
        return at

    def generate(self) -> list[tuple[Any, ...]]:
        """Every event as (received, device, seq, id, captured, intent), in receive order."""
        self.journeys()
        self.flags()
        self.roll_calls()
        self.foreign_voids()
        by_device = sorted(self.intents, key=lambda i: (i[DEV], i[T]))
        self.intents = []
        # One border device is offline on the evening of D3: its records arrive late on D4.
        offline = (self.dev(1, 3), _ms(self.days[2], 19, 30), _ms(self.days[3], 8))
        out = []
        seq: dict[int, int] = {}
        for it in by_device:
            dev = it[DEV]
            seq[dev] = seq.get(dev, 0) + 1
            received = self.received(dev, it[T], offline)
            if received >= self.end_ms:
                continue
            eid = it[EID] or self.uid()
            out.append((received, dev, seq[dev], eid, it[T] + self.skew[dev], it))
        out.sort(key=lambda r: (r[0], r[1], r[2]))
        return out


def _rows(
    scenario: Scenario, events: list[tuple[Any, ...]]
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Event rows, capture-session rows and walk-in person rows, as ingest stores them."""
    from server.ingest.service import _walk_in_person, event_columns

    devices = [d for per_cp in scenario.devices for d in per_cp]
    sessions: dict[int, tuple[int, SealingSession]] = {}
    checked: dict[str, int] = {}
    events_out: list[dict[str, Any]] = []
    sessions_out: list[dict[str, Any]] = []
    people_out: list[dict[str, Any]] = []
    for received, dev, seq, eid, captured, it in events:
        d = devices[dev]
        index = (seq - 1) // SESSION_RECORDS
        if dev not in sessions or sessions[dev][0] != index:
            session = SealingSession.start(d.device_id, d.keys, d.kid, d.server_public, captured)
            sessions[dev] = (index, session)
            sessions_out.append(
                {
                    "id": session.session_id.hex(),
                    "device": d.device_id,
                    "server_kid": d.kid,
                    "created_ms": captured,
                    "blob": session.blob,
                    "first_seen_at": _naive_utc(received),
                }
            )
        session = sessions[dev][1]
        plaintext = canonical_bytes(scenario.body(it, captured, d.author))
        kind = it[KIND]
        body = json.loads(plaintext)
        if kind == "walkin" or checked.get(kind, 0) < 100:
            body = validate_body(body)  # the schema devices seal, loaded as ingest loads it
            checked[kind] = checked.get(kind, 0) + 1
        else:  # the same body, loaded by hand: only ids change type
            for name in ("person", "ref"):
                if name in body:
                    body[name] = uuid.UUID(body[name])
        events_out.append(
            {
                "id": uuid.UUID(eid),
                "operation": scenario.op_id,
                "device": d.device_id,
                "seq": seq,
                "session": session.session_id.hex(),
                **event_columns(body),
                "time_flag": None,
                "skew_ms": scenario.skew[dev],
                "received_at": _naive_utc(received) + dt.timedelta(microseconds=seq * 7919 % 1000),
                "content_hash": hashlib.sha256(plaintext).hexdigest(),
                "body": plaintext.decode(),
                "envelope": session.seal(uuid.UUID(eid), seq, plaintext),
            }
        )
        if body["kind"] == "walkin":
            person = _walk_in_person(scenario.op_id, body)
            person["entry_date"] = _naive_utc(received)
            person["updated_at"] = _naive_utc(received)
            people_out.append(person)
        if len(events_out) >= LOAD_CHUNK:
            yield events_out, sessions_out, people_out
            events_out, sessions_out, people_out = [], [], []
    yield events_out, sessions_out, people_out


def _resolutions(scenario: Scenario, cutoffs: list[int]) -> list[dict[str, Any]]:
    """Staff decisions over the days, each made a few hours after what it answers."""
    rng = random.Random(11)
    out: list[dict[str, Any]] = []

    def add(kind: str, at: int, person: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        at = min(at, scenario.end_ms - MIN)
        row = {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "operation": scenario.op_id,
            "kind": kind,
            "person": uuid.UUID(person) if person else None,
            "payload": json.dumps(payload, sort_keys=True),
            "actor": "staff:1",
            "at": _naive_utc(at),
            "at_ms": at,
            "reason": "bench: " + kind.replace("_", " "),
            "based_on_version": None,
            "reverted_by": None,
        }
        out.append(row)
        return row

    for w in scenario.walkins:
        later = w["t"] + HOUR + rng.randrange(3 * HOUR)
        if w["duplicate_of"] and rng.random() < 0.8:
            add("merge", later, w["id"], {"into": w["duplicate_of"]})
        elif "group" in w and rng.random() < 0.7:
            add("accept_walkin", later, w["id"], {"group": w["group"]})
    confirms = []
    for pid in scenario.absent:
        if rng.random() < 0.3:
            confirms.append(add("confirm", cutoffs[0] + rng.randrange(3 * 24 * HOUR), pid, {}))
    for row in confirms[:5]:
        revert = add("revert", row["at_ms"] + HOUR, str(row["person"]), {})
        revert["payload"] = json.dumps({"resolution": str(row["id"])}, sort_keys=True)
        row["reverted_by"] = revert["id"]
    for pid in scenario.never_seen:
        if rng.random() < 0.2:
            add("declare_missing", cutoffs[0] + rng.randrange(3 * 24 * HOUR), pid, {})
    for eid, t in scenario.headcounts:
        if rng.random() < 0.5:
            add("resolve", t + 2 * HOUR, None, {"key": f"headcount:{eid}"})
    for pid, key in scenario.conflicts:
        if rng.random() < 0.5:
            add("resolve", cutoffs[0] + rng.randrange(3 * 24 * HOUR), pid, {"key": key})
    people = scenario.all_people
    for pid in rng.sample(people, max(1, len(people) // 2000)):
        target = rng.choice(scenario.groups)
        add("move", cutoffs[0] + rng.randrange(3 * 24 * HOUR), pid, {"group": target})
    return out


def _quarantine(scenario: Scenario, rng: random.Random) -> list[dict[str, Any]]:
    """Refused records: unauthentic envelopes and bodies that break the schema."""
    devices = [d for per_cp in scenario.devices for d in per_cp]
    start = _ms(scenario.days[0], 8)
    rows = []
    for i in range(30):
        d = devices[i % len(devices)]
        at = rng.randrange(start, scenario.end_ms - HOUR)
        bad_body = i % 3 == 0
        rows.append(
            {
                "operation": scenario.op_id,
                "device": d.device_id,
                "received_at": _naive_utc(at),
                "reason": "event_invalid" if bad_body else "envelope_unauthentic",
                "message": "The event does not validate: status"
                if bad_body
                else "The envelope is not authentic.",
                "event_id": uuid.UUID(int=rng.getrandbits(128), version=4),
                "seq": 900_000 + i,
                "envelope": rng.randbytes(180),
                "body": '{"kind":"checkin","status":"teleported"}' if bad_body else None,
                "released_at": _naive_utc(at + 2 * HOUR) if i < 5 else None,
            }
        )
    return rows


def load(server: Server, scenario: Scenario) -> dict[str, Any]:
    """Write the scenario into the server's database; return counts for the output."""
    from server.db import bulk_insert, database, write_transaction
    from server.models import (
        CaptureSession,
        Device,
        Event,
        Operation,
        Person,
        QuarantinedRecord,
        Resolution,
    )

    start = time.perf_counter()
    events = scenario.generate()
    generated = time.perf_counter() - start
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e[5][KIND]] = kinds.get(e[5][KIND], 0) + 1
    first = _naive_utc(_ms(scenario.days[0], 5))
    with write_transaction():
        Operation.update(starts_at=_naive_utc(_ms(scenario.days[0], 6))).where(
            Operation.id == scenario.op_id
        ).execute()
        Person.update(entry_date=first, updated_at=first).where(
            Person.operation == scenario.op_id
        ).execute()
    sqlite = not database.obj.__class__.__name__.startswith("Postgres")
    if sqlite:  # a bigger page cache while loading only (random-key indexes); put back after
        cache = database.execute_sql("PRAGMA cache_size").fetchone()[0]
        database.execute_sql("PRAGMA cache_size = -500000")
    # The event table's secondary indexes are built once after the load (the same
    # definitions), not row by row: a database bulk load, not a measured path.
    if sqlite:
        indexes = database.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event' "
            "AND sql IS NOT NULL"
        ).fetchall()
    else:
        indexes = database.execute_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'event' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
    with write_transaction():
        for name, _sql in indexes:
            database.execute_sql(f'DROP INDEX "{name}"')
    inserting = 0.0
    for chunk, sessions, people in _rows(scenario, events):
        mark = time.perf_counter()
        with write_transaction():
            if sessions:
                bulk_insert(CaptureSession, sessions)
            if people:
                bulk_insert(Person, people)
            bulk_insert(Event, chunk)
        inserting += time.perf_counter() - mark
    mark = time.perf_counter()
    with write_transaction():
        for _name, sql in indexes:
            database.execute_sql(sql)
    indexing = time.perf_counter() - mark
    if sqlite:
        database.execute_sql(f"PRAGMA cache_size = {int(cache)}")
    cutoffs = [_ms(d, 21) for d in scenario.days]
    resolutions = _resolutions(scenario, cutoffs)
    with write_transaction():
        bulk_insert(Resolution, resolutions)
        bulk_insert(QuarantinedRecord, _quarantine(scenario, random.Random(13)))
        high: dict[int, int] = {}
        for e in events:
            high[e[1]] = max(high.get(e[1], 0), e[2])
        for i, d in enumerate(d for per_cp in scenario.devices for d in per_cp):
            name = ("Station", "Border", "Reception")[i // DEVICES_PER_CHECKPOINT]
            Device.update(
                label=f"{name} {i % DEVICES_PER_CHECKPOINT + 1}",
                enrolled_at=_naive_utc(_ms(scenario.days[0], 5, 30)),
                high_seq=high.get(i, 0),
                contiguous_seq=high.get(i, 0),
                skew_ms=scenario.skew[i],
            ).where(Device.id == d.device_id).execute()
    if sqlite:
        database.execute_sql("ANALYZE")
    return {
        "events": len(events),
        "by_kind": kinds,
        "walkins": len(scenario.walkins),
        "resolutions": len(resolutions),
        "generate_s": round(generated, 1),
        "insert_s": round(inserting, 1),
        "index_s": round(indexing, 1),
        "load_s": round(time.perf_counter() - start, 1),
    }


def add_roster(op: Operation, people: int, now: dt.datetime) -> None:
    """Groups of ``GROUP_SIZE`` on the first group's route, and ``people`` roster records.

    The records are what ``muster-server roster import`` of ``bench.common.roster_row`` lines
    stores for new people (``server.rosters.store``: ``model_values``, ``_new_person``; sealed
    document numbers and phones, blind-indexed document keys), without the per-line
    validation and matching.
    """
    from server.db import bulk_insert, database, write_transaction
    from server.models import Group, Person, RouteStop
    from server.models import Operation as OperationRow
    from server.rosters.rows import Row
    from server.rosters.store import _new_person, model_values

    n_groups = max(1, -(-people // GROUP_SIZE))
    operation = OperationRow.get_by_id(op.id)
    with write_transaction():
        bulk_insert(
            Group,
            [
                {"operation": op.id, "name": f"Bus {g + 1}", "expected_size": GROUP_SIZE}
                for g in range(1, n_groups)
            ],
        )
        ids = dict(
            database.execute_sql(
                f'SELECT "name", "id" FROM "travel_group" WHERE "operation_id" = '
                f"{database.obj.param}",
                [op.id],
            ).fetchall()
        )
        bulk_insert(
            RouteStop,
            [
                {"group": ids[f"Bus {g + 1}"], "checkpoint": cp, "position": pos}
                for g in range(1, n_groups)
                for pos, cp in enumerate(op.checkpoints, start=1)
            ],
        )
    op.groups[:] = [ids[f"Bus {g + 1}"] for g in range(n_groups)]
    rows = []
    for i in range(people):
        ext, name, alt, sex, birth, doc, phone, group = roster_row(i, n_groups)
        data: dict[str, Any] = {"external_id": ext, "full_name": name, "sex": sex}
        if alt:
            data["alternate_names"] = [alt]
        data.update(birth_date=dt.date.fromisoformat(birth), document_number=doc, phone=phone)
        rows.append(_new_person(operation, model_values(Row(i + 2, [], data), ids[group]), now))
        if len(rows) == LOAD_CHUNK or i == people - 1:
            with write_transaction():
                bulk_insert(Person, rows)
            rows = []


class Parts:
    """Times each step of ``write_folder`` and the seal by wrapping the module functions."""

    STEPS = (
        ("content", "content", "build"),
        ("tables", "tables", "write_summary"),
        ("tables", "tables", "write_groups"),
        ("tables", "tables", "write_late"),
        ("tables", "tables", "write_people"),
        ("pdf", "pdf", "render"),
        ("html", "htmlpage", "render"),
        ("seal", "integrity", "seal"),
    )

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._saved: list[tuple[Any, str, Callable[..., Any]]] = []

    def __enter__(self) -> Parts:
        from server.reports import service

        for part, module_name, name in self.STEPS:
            module = getattr(service, module_name)
            original = getattr(module, name)
            self._saved.append((module, name, original))
            setattr(module, name, self._timed(part, original))
        return self

    def _timed(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[part] = self.spent.get(part, 0.0) + time.perf_counter() - start

        return wrapper

    def __exit__(self, *exc: object) -> None:
        for module, name, original in reversed(self._saved):
            setattr(module, name, original)


#: Written into the work folder by ``--keep``; ``--reuse`` reads it back.
META = "bench-report.json"


def _setup(server: Server, backend: str, people: int, total: int) -> dict[str, Any]:
    """Make the operation and load the data; what the timed part needs, as plain JSON."""
    setup_start = time.perf_counter()
    with server:
        # The operation, its checkpoints and the first group through the API; the rest of the
        # groups and the roster are written in process below (a 100,000-line import alone
        # would take a minute here).
        op = make_operation(server, 0, group_size=GROUP_SIZE)
        devices = [
            [
                RawDevice.enrol(server, op.id, author=f"{name}{k + 1}")
                for k in range(DEVICES_PER_CHECKPOINT)
            ]
            for name in ("station", "border", "reception")
        ]
    roster_s = time.perf_counter() - setup_start

    from server.db import database
    from server.models import utcnow

    with _app(server).app_context():
        database.connect(reuse_if_open=True)
        now = utcnow()
        roster_start = time.perf_counter()
        add_roster(op, people, now)
        roster_s += time.perf_counter() - roster_start
        # The last night is the latest whose cut-off has passed; D1 is three days before.
        local_now = now.replace(tzinfo=dt.UTC).astimezone(ZONE)
        last = local_now.date() - dt.timedelta(days=0 if local_now.hour >= 21 else 1)
        days = [last - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
        members: dict[int, list[str]] = {}
        rows_of: dict[str, int] = {}
        for pid, ext, gid in database.execute_sql(
            'SELECT "id", "external_id", "group_id" FROM "person" WHERE "operation_id" = '
            + database.obj.param,
            [op.id],
        ).fetchall():
            text = str(uuid.UUID(str(pid)))
            members.setdefault(gid, []).append(text)
            rows_of[text] = int(ext[1:])
        for ids in members.values():
            ids.sort(key=lambda p: rows_of[p])
        rng = random.Random(3)
        n_dev = DEVICES_PER_CHECKPOINT * 3
        skew = {i: rng.randrange(-3_000, 3_000) for i in range(n_dev)}
        skew[n_dev - 1] = 95_000  # one phone's clock is a minute and a half fast
        scenario = Scenario(
            op_id=op.id,
            checkpoints=op.checkpoints,
            devices=devices,
            groups=op.groups,
            members=members,
            rows_of=rows_of,
            days=days,
            end_ms=int(now.replace(tzinfo=dt.UTC).timestamp() * 1000) - MIN,
            events=total,
            skew=skew,
        )
        loaded = load(server, scenario)
        database.close()
    return {
        "operation": op.id,
        "days": [d.isoformat() for d in days],
        "now": now.isoformat(),
        "people": people,
        "backend": backend,
        "database_url": server.database_url,
        "loaded": loaded,
        "setup_s": round(time.perf_counter() - setup_start, 1),
        "roster_and_devices_s": round(roster_s, 1),
    }


def _app(server: Server, processes: int | None = None) -> Any:
    from server import create_app

    config: dict[str, Any] = {
        "DATABASE_URL": server.database_url,
        "INSTANCE_PATH": str(server.instance),
        "KEYS_DIR": str(server.instance / "keys"),
        "REPORT_SCHEDULER": False,
    }
    if processes is not None:
        config["REPORT_PROCESSES"] = processes
    return create_app(config)


def _reused(folder: str, people: int) -> tuple[Server, dict[str, Any]]:
    """The server folder and setup facts a ``--keep`` run left (refused when they do not fit)."""
    from pathlib import Path

    root = Path(folder)
    meta = json.loads((root / META).read_text(encoding="utf-8"))
    if meta["people"] != people:
        raise SystemExit(f"{folder} holds {meta['people']} people, not {people}: give its size")
    return Server(root, meta["database_url"]), meta


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the report's second process)."""
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _processes_now() -> int:
    """``service.workers``' default on this machine now: 2 when a core is idle, else 1."""
    from server.reports.service import idle_cores

    cores = os.cpu_count() or 1
    return 2 if cores >= 2 and idle_cores() >= 1 else 1


def _parser() -> argparse.ArgumentParser:
    """The options."""
    parser = arguments(
        "bench.report",
        __doc__,
        quick="{:,} roster people, {:,} events, {} timed runs".format(*SIZES["quick"]),
        full="{:,} people, {:,} events, {} timed runs, and the times of nights D1-D3 "
        "(default: the same data, {} runs)".format(*SIZES["full"], SIZES["default"][2]),
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Server database (postgresql needs MUSTER_BENCH_PG_URL; without it the figure "
        "is skipped). Ignored with --reuse, which uses the kept database's.",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        metavar="N",
        help="Timed runs (for profiling by hand; default: the size's).",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="Leave the loaded database and what --reuse needs; its path goes to stderr.",
    )
    parser.add_argument(
        "--reuse",
        default=None,
        metavar="DIR",
        help="Time the reports of a database kept by --keep without loading anything (give "
        "the same size option; implies --keep).",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="REPORT_PROCESSES (default: 2 when a core is idle at start, else 1).",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # first, so that --help answers at once
    size = size_of(args)
    load_at_start = round(os.getloadavg()[0], 2)
    chosen = _processes_now()  # before loading the data keeps a core busy
    backend: str = args.backend
    if backend == "postgresql" and not pg_url():
        skipped("report.nightly", "set MUSTER_BENCH_PG_URL for PostgreSQL", backend=backend)
        return 0
    people, total, repeats = SIZES[size]
    if args.runs is not None:  # fewer or more timed runs (for profiling by hand)
        repeats = args.runs
    reuse: str | None = args.reuse
    processes: int = args.processes if args.processes is not None else chosen
    keep = args.keep or reuse is not None
    if reuse is not None:
        server, meta = _reused(reuse, people)
        backend = meta["backend"]
    else:
        server = server_for(backend, "report")
        meta = {}

    from server.db import database
    from server.models import Operation
    from server.reports import service

    try:
        if reuse is None:
            meta = _setup(server, backend, people, total)
            if keep:
                (server.workdir / META).write_text(json.dumps(meta), encoding="utf-8")
        now = dt.datetime.fromisoformat(meta["now"])
        days = [dt.date.fromisoformat(d) for d in meta["days"]]
        with _app(server, processes).app_context():
            database.connect(reuse_if_open=True)
            workers = service.workers()
            operation = Operation.get_by_id(meta["operation"])
            earlier = {}
            for day in days[:-1]:
                if reuse is not None and service.folder_of(operation.id, day).is_dir():
                    continue  # stored by the run that kept the database
                start = time.perf_counter()
                service.generate(operation, day, now=now)
                earlier[day.isoformat()] = round(time.perf_counter() - start, 2)
            times: list[float] = []
            cpu_times: list[float] = []  # steadier than wall time on a shared machine
            child_cpu: list[float] = []  # of the second process (--processes 2)
            parts: list[dict[str, float]] = []
            digests: set[str] = set()
            folder = service.folder_of(operation.id, days[-1])
            for _ in range(repeats):
                if folder.exists():
                    shutil.rmtree(folder)
                with Parts() as timer:
                    start, cpu = time.perf_counter(), time.process_time()
                    children = _children_cpu()
                    result = service.generate(operation, days[-1], now=now)
                    times.append(time.perf_counter() - start)
                    cpu_times.append(time.process_time() - cpu)
                    child_cpu.append(_children_cpu() - children)
                parts.append({k: round(v, 2) for k, v in timer.spent.items()})
                digests.add(result.manifest_sha256)
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
            sizes = {p.name: p.stat().st_size for p in sorted(folder.iterdir())}
            database.close()
    finally:
        if keep:  # leave the loaded database for profiling or more runs (--reuse DIR)
            print(f"kept {server.workdir} (--reuse {server.workdir})", file=sys.stderr)
        else:
            shutil.rmtree(server.workdir, ignore_errors=True)
    mid = sorted(range(len(times)), key=lambda i: times[i])[len(times) // 2]
    emit(
        "report.nightly",
        median(times),
        "s",
        people=people,
        events=meta["loaded"]["events"],
        size=size,
        backend=backend,
        median_of=repeats,
        target="< 10",
        runs=[round(t, 2) for t in times],
        cpu_s=[round(t, 2) for t in cpu_times],
        child_cpu_s=[round(t, 2) for t in child_cpu],
        parts_s=parts[mid],
        reproducible=len(digests) == 1,
        night=days[-1].isoformat(),
        earlier_nights_s=earlier if size == "full" else None,
        events_in_report=summary["events_counted"],
        totals=summary["totals"]["by_state"],
        late_records=summary["late"]["count"],
        discrepancies=summary["discrepancies"],
        file_bytes=sizes,
        data=meta["loaded"],
        setup_s=meta["setup_s"],
        reused=reuse is not None,
        processes=workers,
        processes_chosen_by="--processes" if args.processes is not None else "idle cores at start",
        load_at_start=load_at_start,
        roster_and_devices_s=meta["roster_and_devices_s"],
        via="server.reports.service.generate in process, on the server's database",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
