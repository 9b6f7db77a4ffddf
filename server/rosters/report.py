"""The outcome of a roster import: counts, row errors, warnings and changed field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.rosters.rows import RowError

#: How many row errors an error body or report lists; the count is always exact.
MAX_LISTED_ERRORS = 1000


@dataclass
class ImportReport:
    """Counts and per-row outcomes. Holds field names and line numbers, never values."""

    dry_run: bool = False
    valid_only: bool = False
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    invalid_lines: set[int] = field(default_factory=set)

    def reject(self, errors: list[RowError]) -> None:
        """Count a refused row once, however many errors it has."""
        if not errors:
            return
        if errors[0].line not in self.invalid_lines:
            self.invalid_lines.add(errors[0].line)
            self.invalid += 1
        self.errors.extend(errors)

    def sorted_errors(self) -> list[RowError]:
        return sorted(self.errors, key=lambda e: (e.line, e.column))

    def as_dict(self) -> dict[str, Any]:
        errors = self.sorted_errors()
        body: dict[str, Any] = {
            "dry_run": self.dry_run,
            "valid_only": self.valid_only,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "errors": [e.as_dict() for e in errors[:MAX_LISTED_ERRORS]],
            "warnings": list(self.warnings),
            "changes": list(self.changes),
            "columns": dict(self.columns),
        }
        if len(errors) > MAX_LISTED_ERRORS:
            body["errors_truncated"] = True
        return body

    def summary(self) -> str:
        """One human line: what happened (or would happen, on a dry run)."""
        verb = "Would import" if self.dry_run else "Imported"
        text = (
            f"{verb} {self.rows} rows: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.invalid} invalid."
        )
        return text
