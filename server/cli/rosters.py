"""``roster`` commands: import a CSV or XLSX list of people into an operation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from server.cli.output import command_errors, emit, json_option, require_initialised
from server.operations import service as operations
from server.rosters.columns import ALIASES
from server.rosters.rejects import RejectsFile
from server.rosters.rows import Row
from server.rosters.service import ImportOptions, RosterRejected, import_roster

#: Files bigger than this show a running row count on stderr.
PROGRESS_BYTES = 1024 * 1024


@click.group()
def roster() -> None:
    """Import rosters (lists of people) into an operation."""


@roster.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@click.option("--group", default=None, help="Put every person in this group (id or name).")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar='"Header=field"',
    help="Read a column as a field (repeatable); field 'ignore' skips a column.",
)
@click.option("--dry-run", is_flag=True, help="Check and count, write nothing.")
@click.option("--valid-only", is_flag=True, help="Import the valid rows, refuse the others.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --valid-only: write refused rows here (CSV, UTF-8 with BOM).",
)
@click.option("--sheet", default=None, help="XLSX sheet to read (default: the first).")
@json_option
@with_appcontext
@command_errors
def roster_import(
    file: Path,
    operation_ref: str,
    group: str | None,
    mapping: tuple[str, ...],
    dry_run: bool,
    valid_only: bool,
    rejects: Path | None,
    sheet: str | None,
    as_json: bool,
) -> None:
    """Import a roster (CSV or XLSX) into an operation: every row, or none.

    \b
    Headers in English or Chinese are recognised (see 'muster-server roster fields').
    People already in the operation are matched by external id, else by document number,
    and updated instead of added again. A file with any bad row imports nothing, and each
    bad row is printed as 'line N, column C: reason'; --valid-only imports the good rows and
    writes the bad ones to --rejects for fixing and importing again.

    \b
    Example: muster-server roster import students.csv --operation 1 --dry-run
    Example: muster-server roster import bus3.xlsx --operation 1 --group "Bus 3"
    Example: muster-server roster import list.csv --operation 1 --map "Passport No.=document_number"
    Example: muster-server roster import list.csv --operation 1 --valid-only --rejects fix.csv
    """
    require_initialised()
    if rejects is not None and not valid_only:
        raise click.UsageError("--rejects goes with --valid-only.")
    op = operations.get_operation(operation_ref)
    options = ImportOptions(
        group=group, mapping=list(mapping), dry_run=dry_run, valid_only=valid_only, sheet=sheet
    )
    show = not as_json and os.path.getsize(file) > PROGRESS_BYTES
    sink: RejectsFile | None = None

    def on_reject(header: list[str], row: Row) -> None:
        nonlocal sink
        if rejects is None or dry_run:
            return
        if sink is None:
            sink = RejectsFile(rejects, header)
        sink.write(row.cells, row.errors)

    def progress(rows: int) -> None:
        if show:
            click.echo(f"\r{rows} rows read", nl=False, err=True)

    try:
        with file.open("rb") as stream:
            report = import_roster(
                op, stream, options, actor=None, progress=progress, on_reject=on_reject
            )
    except RosterRejected as exc:
        if show:
            click.echo(err=True)
        if not as_json:
            for error in exc.details["errors"]:
                click.echo(
                    f"line {error['line']}, column {error['column']}: {error['reason']}", err=True
                )
        raise
    finally:
        if sink is not None:
            sink.close()
    if show:
        click.echo(err=True)
    emit(report.as_dict(), as_json, lambda d: _human(report.summary(), d, rejects, sink))


def _human(
    summary: str, data: dict[str, Any], rejects: Path | None, sink: RejectsFile | None
) -> str:
    lines = [summary, *data["warnings"]]
    lines += [f"line {e['line']}, column {e['column']}: {e['reason']}" for e in data["errors"]]
    if sink is not None:
        lines.append(f"{sink.count} refused rows written to {rejects}.")
    return "\n".join(lines)


@roster.command("fields")
@json_option
def roster_fields(as_json: bool) -> None:
    """List the fields a roster can fill and the headers recognised for each.

    Example: muster-server roster fields
    """
    emit(
        {name: list(aliases) for name, aliases in ALIASES.items()},
        as_json,
        lambda d: "\n".join(f"{name:<16} {', '.join(aliases)}" for name, aliases in d.items()),
    )
