"""``muster-server report``: make, verify, prune nightly reports and export the public key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from server.cli.output import command_errors, emit, json_option, require_initialised
from server.errors import InvalidInput


@click.group("report")
def report() -> None:
    """Nightly headcount reports (docs/reports.md)."""


@report.command("nightly")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@click.option("--date", "day", default=None, help="Night (YYYY-MM-DD); default: every due one.")
@click.option("--replace", is_flag=True, help="Overwrite a stored report that differs.")
@json_option
@with_appcontext
@command_errors
def nightly_command(operation_ref: str, day: str | None, replace: bool, as_json: bool) -> None:
    """Make the report of one night (or every due night not yet stored) for an operation.

    Idempotent: a stored identical report is left alone. For cron or a systemd timer when
    the embedded scheduler of 'muster-server serve' is off.

    Example: muster-server report nightly --operation "Kharkiv students" --date 2026-03-01
    """
    from server.models import utcnow
    from server.operations.service import get_operation
    from server.reports import nights, service

    require_initialised()
    op = get_operation(operation_ref)
    now = utcnow()
    if day is not None:
        days = [nights.parse_day(day)]
    else:
        stored = service.stored_nights(op.id)
        days = [d for d in nights.due_nights(op, now) if d not in stored]
    results = [service.generate(op, d, now=now, replace=replace).as_dict() for d in days]
    emit(
        {"reports": results},
        as_json,
        lambda d: (
            "\n".join(f"{r['date']}: {r['status']} {r['folder']}" for r in d["reports"])
            or "No report due."
        ),
    )


@report.command("verify")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_key",
    default=None,
    help="Trusted key: base64, or a file holding it (default: this instance's key).",
)
@json_option
@with_appcontext
@command_errors
def verify_command(folder: Path, public_key: str | None, as_json: bool) -> None:
    """Check a report folder: every file against the manifest, the manifest's signature.

    Names each changed, missing or extra file; exits 1 unless the folder is intact.

    Example: muster-server report verify instance/reports/1/2026-03-01 --public-key key.txt
    """
    import sys

    from server.reports import integrity, service

    if not folder.is_dir():
        raise InvalidInput(f"No such report folder: {folder}")
    try:
        key = integrity.load_public_key(public_key or service.public_key())
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    verdict = integrity.verify(folder, key)
    data: dict[str, Any] = {"folder": str(folder), **verdict.as_dict()}

    def human(d: dict[str, Any]) -> str:
        if d["ok"]:
            return f"OK: {d['folder']} is intact and signed by the trusted key."
        lines = [f"FAILED: {d['folder']}", f"  signature: {d['signature']}"]
        for kind in ("changed", "missing", "extra"):
            lines += [f"  {kind}: {name}" for name in d[kind]]
        return "\n".join(lines)

    emit(data, as_json, human)
    if not verdict.ok:
        sys.exit(1)


@report.command("public-key")
@json_option
@with_appcontext
def public_key_command(as_json: bool) -> None:
    """Print the report signing public key (base64) to give to the ministry.

    Example: muster-server report public-key > muster-report-key.txt
    """
    from server.reports import service

    emit(
        {"algorithm": "Ed25519", "public_key": service.public_key()},
        as_json,
        lambda d: d["public_key"],
    )


@report.command("prune")
@json_option
@with_appcontext
@command_errors
def prune_command(as_json: bool) -> None:
    """Delete report folders older than REPORT_RETENTION_DAYS (0 keeps them forever).

    Example: muster-server report prune --json
    """
    from server.reports import service

    require_initialised()
    removed = service.prune()
    emit(
        {"removed": removed},
        as_json,
        lambda d: f"Removed {len(d['removed'])} report folder(s).",
    )


@report.command("list")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@json_option
@with_appcontext
@command_errors
def list_command(operation_ref: str, as_json: bool) -> None:
    """List the stored reports of an operation.

    Example: muster-server report list --operation 1
    """
    from server.operations.service import get_operation
    from server.reports import service

    require_initialised()
    op = get_operation(operation_ref)
    items = [
        {"date": d.isoformat(), "folder": str(service.folder_of(op.id, d))}
        for d in service.stored_nights(op.id)
    ]
    emit(
        {"reports": items},
        as_json,
        lambda d: "\n".join(f"{r['date']}  {r['folder']}" for r in d["reports"]) or "None.",
    )


@report.command("export")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@click.option(
    "--format", "fmt", required=True, type=click.Choice(["csv", "xlsx", "pfif"]), help="Format."
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (replaced only when complete).",
)
@json_option
@with_appcontext
@command_errors
def export_command(operation_ref: str, fmt: str, out: Path, as_json: bool) -> None:
    """Export an operation's people for partners: roster with states (CSV, XLSX) or PFIF 1.4.

    No document numbers or phones in any format (docs/reports.md, "Exports for partners").

    Example: muster-server report export --operation 1 --format pfif --out people.pfif.xml
    """
    import os

    from flask import current_app

    from server.operations.service import get_operation
    from server.reconcile import backlog
    from server.reports import exports

    require_initialised()
    op = get_operation(operation_ref)
    backlog.catch_up(op.id)  # states include every acknowledged event
    domain = str(current_app.config.get("PFIF_DOMAIN") or exports.DEFAULT_PFIF_DOMAIN)
    partial = out.with_name(f".{out.name}.partial")
    size = 0
    with open(partial, "wb") as f:
        for chunk in exports.export(op, fmt, domain):
            f.write(chunk)
            size += len(chunk)
    os.replace(partial, out)
    emit(
        {"operation": op.id, "format": fmt, "file": str(out), "bytes": size},
        as_json,
        lambda d: f"Wrote {d['file']} ({d['format']}, {d['bytes']} bytes).",
    )
