"""``muster``: the field device's command line. Everything but enrol and sync works offline."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sync.device import Device
from sync.errors import InvalidEvent, NotFound, Offline, ServerRefused, SyncError
from sync.events import CHECKIN_STATUSES, FLAGS, METHODS, SEXES

DEFAULT_STORE = (
    Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "muster" / "device.db"
)


class Ctx:
    def __init__(self, store: Path, as_json: bool) -> None:
        self.store = store
        self.as_json = as_json
        self._device: Device | None = None

    def passphrase(self, confirm: bool = False) -> str:
        value = os.environ.get("MUSTER_PASSPHRASE")
        if value:
            return value
        return str(click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))

    def device(self) -> Device:
        if self._device is None:
            self._device = Device.open(self.store, self.passphrase())
        return self._device

    def emit(self, data: Any, human: Callable[[Any], str]) -> None:
        if self.as_json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        else:
            click.echo(human(data))


pass_ctx = click.make_pass_decorator(Ctx)


def _run(func: Callable[[], None], ctx: Ctx) -> None:
    try:
        func()
    except ServerRefused as exc:
        _fail(ctx, exc.code, exc.message, exc.details)
    except InvalidEvent as exc:
        _fail(ctx, "event_invalid", str(exc), {"fields": exc.fields})
    except (SyncError, Offline) as exc:
        _fail(ctx, type(exc).__name__, str(exc), {})
    finally:
        if ctx._device is not None:
            ctx._device.close()


def _fail(ctx: Ctx, code: str, message: str, details: Any) -> None:
    if ctx.as_json:
        click.echo(
            json.dumps(
                {"error": {"code": code, "message": message, "details": details or {}}},
                ensure_ascii=False,
            )
        )
    else:
        click.echo(f"Error ({code}): {message}", err=True)
    sys.exit(1)


@click.group()
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Device database (env MUSTER_STORE; default {DEFAULT_STORE}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def main(click_ctx: click.Context, store: Path | None, as_json: bool) -> None:
    """Muster field device: check people in offline, sync when there is a connection.

    \b
    First time:   muster enrol https://muster.example ABCD-EFGH-JK --author olena
    Every day:    muster find "zhang wei"      muster checkin <person> --checkpoint 2
                  muster sync                  muster status

    The passphrase comes from MUSTER_PASSPHRASE or a prompt. Records are durable and sealed
    the moment a command says so; nothing recorded is lost when offline.
    """
    path = store or Path(os.environ.get("MUSTER_STORE", DEFAULT_STORE))
    click_ctx.obj = Ctx(path, as_json)


@main.command()
@click.argument("server_url")
@click.argument("code")
@click.option("--author", required=True, help="Your name or staff id, recorded on every event.")
@click.option("--label", default="", help="A name for this device, e.g. 'Medyka phone 2'.")
@pass_ctx
def enrol(ctx: Ctx, server_url: str, code: str, author: str, label: str) -> None:
    """Enrol this device with a one-time code from an administrator, then pull the roster.

    Example: muster enrol https://muster.example ABCD-EFGH-JK --author olena
    """

    def go() -> None:
        device = Device.enrol(
            ctx.store, server_url, code, passphrase=ctx.passphrase(True), author=author, label=label
        )
        ctx._device = device
        try:
            report = device.pull()
            pulled = report.pulled_people
        except Offline:
            pulled = -1
        ctx.emit(
            {"device_id": str(device.device_id), "operation": device.operation, "people": pulled},
            lambda d: (
                f"Enrolled device {d['device_id']} into '{d['operation']['name']}'. "
                + (
                    f"{d['people']} people pulled."
                    if d["people"] >= 0
                    else "Roster pull failed; run 'muster sync' when online."
                )
            ),
        )

    _run(go, ctx)


@main.command()
@click.argument("query")
@click.option("--limit", default=10, show_default=True)
@pass_ctx
def find(ctx: Ctx, query: str, limit: int) -> None:
    """Find people by name (any script or order), document number or scanned code.

    Example: muster find "wei zhang"     muster find E1234567
    """

    def go() -> None:
        hits = ctx.device().find(query, limit)
        ctx.emit(
            hits,
            lambda d: (
                "\n".join(
                    f"{p['id']}  {p.get('full_name', '')}  {' / '.join(p.get('alternate_names') or [])}"
                    f"  {p.get('document_number') or ''}"
                    for p in d
                )
                or "No match."
            ),
        )

    _run(go, ctx)


def _person_id(device: Device, ref: str) -> str:
    """A person id, scanned code, or a query with exactly one match."""
    hits = device.find(ref, limit=2)
    if len(hits) == 1 or (hits and hits[0]["id"] == ref):
        return str(hits[0]["id"])
    if not hits:
        raise NotFound("No person matches; use 'muster find' or register a walk-in.")
    raise NotFound("Several people match; give the person's id from 'muster find'.")


def _checkpoint_id(device: Device, ref: str) -> int:
    for cp in device.entities("checkpoint"):
        if str(cp["id"]) == ref or cp["name"].casefold() == ref.casefold():
            return int(cp["id"])
    if ref.isdigit():
        return int(ref)
    raise NotFound("No such checkpoint in the local roster; run 'muster sync'.")


def _group_id(device: Device, ref: str) -> int:
    for g in device.entities("group"):
        if str(g["id"]) == ref or g["name"].casefold() == ref.casefold():
            return int(g["id"])
    if ref.isdigit():
        return int(ref)
    raise NotFound("No such group in the local roster; run 'muster sync'.")


def _recorded(ctx: Ctx, kind: str, event_id: Any, extra: dict[str, Any] | None = None) -> None:
    ctx.emit(
        {"recorded": kind, "event_id": str(event_id), **(extra or {})},
        lambda d: (
            f"Recorded {kind} ({d['event_id']}). Saved on this device; "
            "it will be sent at the next sync."
        ),
    )


@main.command()
@click.argument("person")
@click.option("--checkpoint", required=True, help="Checkpoint id or name.")
@click.option("--status", type=click.Choice(CHECKIN_STATUSES), default="present", show_default=True)
@click.option("--method", type=click.Choice(METHODS), default="search", show_default=True)
@click.option("--note", default=None)
@pass_ctx
def checkin(
    ctx: Ctx, person: str, checkpoint: str, status: str, method: str, note: str | None
) -> None:
    """Check a person in at a checkpoint (PERSON: id, scanned code, or a unique search).

    Example: muster checkin 3f2a... --checkpoint "Medyka crossing" --status crossed
    """

    def go() -> None:
        d = ctx.device()
        eid = d.checkin(
            _person_id(d, person),
            checkpoint=_checkpoint_id(d, checkpoint),
            status=status,
            method=method,
            note=note,
        )
        _recorded(ctx, "check-in", eid)

    _run(go, ctx)


@main.command()
@click.option("--name", "full_name", required=True, help="Full name as written.")
@click.option("--alt-name", "alternate_names", multiple=True, help="Name in another script.")
@click.option("--checkpoint", required=True, help="Checkpoint id or name.")
@click.option("--sex", type=click.Choice(SEXES), default=None)
@click.option("--birth-date", default=None, help="YYYY-MM-DD.")
@click.option("--nationality", default=None)
@click.option("--doc-type", "document_type", default=None)
@click.option("--doc", "document_number", default=None, help="Document number.")
@click.option("--phone", default=None)
@click.option("--group", default=None, help="Group id or name to join.")
@click.option("--note", default=None)
@pass_ctx
def walkin(
    ctx: Ctx,
    full_name: str,
    alternate_names: tuple[str, ...],
    checkpoint: str,
    sex: str | None,
    birth_date: str | None,
    nationality: str | None,
    document_type: str | None,
    document_number: str | None,
    phone: str | None,
    group: str | None,
    note: str | None,
) -> None:
    """Register a person who is on no roster.

    Example: muster walkin --name "Li Na" --alt-name 李娜 --doc G7654321 --checkpoint 2
    """

    def go() -> None:
        d = ctx.device()
        details: dict[str, Any] = {"full_name": full_name}
        for key, value in (
            ("sex", sex),
            ("birth_date", birth_date),
            ("nationality", nationality),
            ("document_type", document_type),
            ("document_number", document_number),
            ("phone", phone),
        ):
            if value:
                details[key] = value
        if alternate_names:
            details["alternate_names"] = list(alternate_names)
        if group:
            details["group"] = _group_id(d, group)
        pid = d.walkin(details, checkpoint=_checkpoint_id(d, checkpoint), note=note)
        _recorded(ctx, "walk-in", pid, {"person_id": str(pid)})

    _run(go, ctx)


@main.command()
@click.option("--checkpoint", required=True, help="Checkpoint id or name.")
@click.option("--group", required=True, help="Group id or name.")
@click.option("--count", type=click.IntRange(0, 100000), required=True)
@click.option("--note", default=None)
@pass_ctx
def headcount(ctx: Ctx, checkpoint: str, group: str, count: int, note: str | None) -> None:
    """Record how many people of a group were counted (no names).

    Example: muster headcount --checkpoint 2 --group "Bus 3" --count 52
    """

    def go() -> None:
        d = ctx.device()
        eid = d.headcount(
            checkpoint=_checkpoint_id(d, checkpoint),
            group=_group_id(d, group),
            count=count,
            note=note,
        )
        _recorded(ctx, "headcount", eid)

    _run(go, ctx)


@main.command()
@click.argument("person")
@click.option("--flag", "flag_kind", type=click.Choice(FLAGS), required=True)
@click.option("--checkpoint", default=None, help="Checkpoint id or name.")
@click.option("--note", default=None)
@pass_ctx
def flag(ctx: Ctx, person: str, flag_kind: str, checkpoint: str | None, note: str | None) -> None:
    """Flag a person: needs medical help, injured, vulnerable, lost documents, other.

    Example: muster flag 3f2a... --flag medical --note "asthma, needs inhaler"
    """

    def go() -> None:
        d = ctx.device()
        cp = _checkpoint_id(d, checkpoint) if checkpoint else None
        eid = d.flag(_person_id(d, person), flag=flag_kind, checkpoint=cp, note=note)
        _recorded(ctx, "flag", eid)

    _run(go, ctx)


@main.command()
@click.argument("event_id")
@click.option("--note", default=None, help="Why it is retracted.")
@pass_ctx
def void(ctx: Ctx, event_id: str, note: str | None) -> None:
    """Retract one of this device's earlier events (recorded as a new event).

    Example: muster void 9b1d... --note "wrong person"
    """

    def go() -> None:
        _recorded(ctx, "void", ctx.device().void(event_id, note=note))

    _run(go, ctx)


@main.command()
@pass_ctx
def sync(ctx: Ctx) -> None:
    """Send everything queued and pull roster changes, with a progress bar.

    Safe to interrupt at any moment: nothing is lost or sent twice.

    Example: muster sync
    """

    def go() -> None:
        d = ctx.device()
        total = d.queued_count()
        if ctx.as_json or total == 0:
            report = d.sync()
        else:
            with click.progressbar(length=total, label="Sending", file=sys.stderr) as bar:
                state = {"done": 0}

                def progress(done: int, _total: int) -> None:
                    bar.update(done - state["done"])
                    state["done"] = done

                report = d.sync(progress=progress)
        ctx.emit(
            report.as_dict(),
            lambda r: (
                f"Sent {r['accepted']} new, {r['duplicate']} already held, "
                f"{r['rejected']} rejected; {r['still_queued']} still queued; "
                f"{r['pulled_people']} people updated."
                + (f"\nOffline: {r['error']}. Everything stays queued." if r["offline"] else "")
            ),
        )
        if report.offline:
            sys.exit(2)

    _run(go, ctx)


@main.command()
@pass_ctx
def status(ctx: Ctx) -> None:
    """Show queued, sent and rejected records (with reasons), the last sync and the roster.

    Example: muster status --json
    """

    def go() -> None:
        d = ctx.device()
        data = d.status()
        data["people"] = len(d.index().people)

        def human(s: dict[str, Any]) -> str:
            c = s["counts"]
            lines = [
                f"Device {s['device_id']} in '{s['operation']['name']}'"
                + (" (REVOKED)" if s["revoked"] else ""),
                f"Queued {c['queued']}, sent {c['sent']}, rejected {c['rejected']}; "
                f"{s['people']} people in the local roster.",
                f"Last sync: {s['last_sync'] or 'never'}",
            ]
            lines += [
                f"  rejected #{r['seq']} {r['kind']}: {r['code']} {r['message']}"
                for r in s["rejected"]
            ]
            return "\n".join(lines)

        ctx.emit(data, human)

    _run(go, ctx)


@main.command()
@click.option("--state", type=click.Choice(["queued", "sent", "rejected"]), default=None)
@pass_ctx
def outbox(ctx: Ctx, state: str | None) -> None:
    """List recorded events with their state (queued, sent, rejected with reason).

    Example: muster outbox --state queued
    """

    def go() -> None:
        items = ctx.device().outbox(state)
        ctx.emit(
            items,
            lambda d: (
                "\n".join(
                    f"#{r['seq']:<6} {r['kind']:<10} {r['state']:<9} {r['event_id']}"
                    + (f"  {r['code']}: {r['message']}" if r["code"] else "")
                    for r in d
                )
                or "Nothing recorded yet."
            ),
        )

    _run(go, ctx)


@main.command()
@pass_ctx
def checkpoints(ctx: Ctx) -> None:
    """List the checkpoints and groups in the local roster.

    Example: muster checkpoints
    """

    def go() -> None:
        d = ctx.device()
        data = {"checkpoints": d.entities("checkpoint"), "groups": d.entities("group")}
        ctx.emit(
            data,
            lambda x: "\n".join(
                [f"checkpoint {c['id']}: {c['name']} ({c['kind']})" for c in x["checkpoints"]]
                + [
                    f"group {g['id']}: {g['name']} (expected {g['expected_size']})"
                    for g in x["groups"]
                ]
            ),
        )

    _run(go, ctx)


if __name__ == "__main__":
    main()
