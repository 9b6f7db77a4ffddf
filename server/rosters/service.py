"""Import a roster into an operation: all rows or none, or only the valid ones on request.

One pass over the file, in one write transaction: rows are validated as they stream in and
written in batches of :data:`~server.rosters.store.BATCH_SIZE`. Once a row is refused (and
``valid_only`` is off) nothing more is written, the rest of the file is still checked so that
every bad line is named, and the transaction is rolled back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from server import audit
from server.db import statistics, write_transaction
from server.errors import MusterError
from server.models import Group, Operation, StaffUser
from server.rosters import columns as cols
from server.rosters.reader import open_roster
from server.rosters.report import MAX_LISTED_ERRORS, ImportReport
from server.rosters.rows import Row, RowError, is_blank, parse
from server.rosters.store import BATCH_SIZE, Batch, flush, model_values
from sync.normalize import fold
from sync.protocol import ErrorCode

Progress = Callable[[int], None]
RejectSink = Callable[[list[str], Row], None]


@dataclass
class ImportOptions:
    """What the operator asked for (CLI flags or API form fields)."""

    group: str | None = None
    mapping: Sequence[str] | Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    valid_only: bool = False
    sheet: str | None = None


class RosterRejected(MusterError):
    """The roster has invalid rows and nothing was imported."""

    code = ErrorCode.ROSTER_INVALID


def import_roster(
    op: Operation,
    stream: IO[bytes],
    options: ImportOptions,
    *,
    actor: StaffUser | None,
    progress: Progress | None = None,
    on_reject: RejectSink | None = None,
) -> ImportReport:
    """Validate and import a roster file into ``op``; see the module docstring for the rules.

    ``on_reject(header, row)`` hears about each refused row in ``valid_only`` mode (for a
    rejects file). Raises :class:`RosterRejected` listing every bad line otherwise.
    """
    mapping = cols.parse_mapping(options.mapping)
    roster = open_roster(stream, options.sheet)
    columns = cols.resolve(roster.header, mapping)
    groups = {fold(g.name): g.id for g in Group.select().where(Group.operation == op)}
    fixed_group = _fixed_group(groups, options.group)
    report = ImportReport(dry_run=options.dry_run, valid_only=options.valid_only)
    report.columns = {h: f for h, f in zip(columns.header, columns.fields, strict=True) if f}
    if columns.unknown:
        report.warnings.append("Ignored unknown columns: " + ", ".join(columns.unknown) + ".")
    no_key_rows = 0

    def reject(row: Row) -> None:
        report.reject(row.errors)
        if on_reject is not None and options.valid_only:
            on_reject(roster.header, row)

    with _transaction(options.dry_run):
        batch = Batch(op, write=not options.dry_run)
        seen_ext: dict[str, int] = {}
        seen_doc: dict[str, int] = {}
        for line in roster.lines:
            if is_blank(line.cells):
                continue
            report.rows += 1
            row = parse(line, columns)
            group_id = fixed_group
            if not row.errors and "group" in row.data:
                group_id = groups.get(fold(row.data["group"]))
                if group_id is None:
                    row.errors.append(
                        RowError(
                            line.number,
                            columns.header_of("group"),
                            "No group of this name in the operation.",
                        )
                    )
            values = model_values(row, group_id) if not row.errors else {}
            _check_repeats(row, values, columns, seen_ext, seen_doc)
            if row.errors:
                reject(row)
                if not options.valid_only:
                    batch.write = False  # keep checking, but nothing more will be kept
            else:
                no_key_rows += not (values.get("external_id") or values.get("document_key"))
                batch.rows.append((row, values))
            if len(batch.rows) >= BATCH_SIZE:
                flush(batch, report, reject)
            if progress is not None and report.rows % BATCH_SIZE == 0:
                progress(report.rows)
        flush(batch, report, reject)
        if progress is not None:
            progress(report.rows)
        if report.rows == 0:
            raise MusterError("The roster has a header but no rows.", code=ErrorCode.ROSTER_INVALID)
        if report.invalid and not options.valid_only:
            raise _rejected(report)
        if no_key_rows:
            report.warnings.append(
                f"{no_key_rows} rows have neither an external id nor a document number: "
                "importing them again would add them again."
            )
        if not options.dry_run:
            audit.record(
                audit.actor_of(actor),
                "roster.import",
                operation=op.id,
                target=f"operation:{op.id}",
                details={
                    k: getattr(report, k)
                    for k in ("rows", "created", "updated", "unchanged", "invalid")
                },
            )
    if not options.dry_run:
        statistics.grew("person", report.created)
    return report


@contextlib.contextmanager
def _transaction(dry_run: bool) -> Iterator[None]:
    if dry_run:
        yield
    else:
        with write_transaction():
            yield


def _fixed_group(groups: dict[str, int], name: str | None) -> int | None:
    if not name:
        return None
    if name.isdigit() and int(name) in groups.values():
        return int(name)
    group_id = groups.get(fold(name))
    if group_id is None:
        raise MusterError(
            "No group of this name in the operation.",
            code=ErrorCode.ROSTER_INVALID,
            details={"group": name},
        )
    return group_id


def _check_repeats(
    row: Row,
    values: dict[str, Any],
    columns: cols.Columns,
    seen_ext: dict[str, int],
    seen_doc: dict[str, int],
) -> None:
    """Refuse a second line with an external id or document key seen earlier in the file."""
    ext, key = values.get("external_id"), values.get("document_key")
    if ext:
        first = seen_ext.setdefault(ext, row.line)
        if first != row.line:
            row.errors.append(
                RowError(
                    row.line, columns.header_of("external_id"), f"Same external id as line {first}."
                )
            )
    if key:
        first = seen_doc.setdefault(key, row.line)
        if first != row.line:
            row.errors.append(
                RowError(
                    row.line,
                    columns.header_of("document_number"),
                    f"Same document number as line {first}.",
                )
            )


def _rejected(report: ImportReport) -> RosterRejected:
    body = report.as_dict()
    details = {k: body[k] for k in ("rows", "invalid", "errors", "warnings")}
    if len(report.errors) > MAX_LISTED_ERRORS:
        details["errors_truncated"] = True
    return RosterRejected(
        f"{report.invalid} of {report.rows} rows are invalid; nothing was imported. "
        "Fix them, or import the valid rows only.",
        details=details,
    )


__all__ = ["ImportOptions", "ImportReport", "RosterRejected", "import_roster"]
