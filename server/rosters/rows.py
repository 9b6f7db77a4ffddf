"""Turn one line of cells into validated person data, or into row errors that name the line
and column but never the values (no personal data in errors)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from server.rosters.columns import Columns
from server.rosters.reader import Line
from server.rosters.schema import RosterRowSchema

_schema = RosterRowSchema()


@dataclass(frozen=True)
class RowError:
    """Why a line was refused: its physical line number, the column's header and a reason."""

    line: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.reason}"


@dataclass
class Row:
    """A line that passed the schema: its number, original cells and typed data."""

    line: int
    cells: list[Any]
    data: dict[str, Any]
    errors: list[RowError] = field(default_factory=list)


def is_blank(cells: list[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def clean(value: Any) -> Any:
    """NFKC-normalise and trim text; drop empty cells; keep workbook numbers and dates."""
    if value is None:
        return None
    if isinstance(value, str):
        text = " ".join(unicodedata.normalize("NFKC", value).split())
        return text or None
    return value


def parse(line: Line, columns: Columns) -> Row:
    """Map and validate one line; the result's ``errors`` is empty when the row is good."""
    raw: dict[str, Any] = {}
    for name, value in zip(columns.fields, line.cells, strict=False):
        if name is None:
            continue
        value = clean(value)
        if value is None:
            continue
        if name not in ("birth_date", "age") and not isinstance(value, str):
            from server.rosters.reader import cell_text

            value = cell_text(value)
        raw[name] = value
    row = Row(line.number, line.cells, {})
    try:
        row.data = _schema.load(raw)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        for name, problem in messages.items():
            row.errors.append(RowError(line.number, columns.header_of(str(name)), _first(problem)))
    return row


def _first(problem: Any) -> str:
    """The first message of a marshmallow error entry (lists and per-item dicts nest)."""
    while isinstance(problem, dict | list):
        if not problem:
            return "Invalid value."
        problem = next(iter(problem.values())) if isinstance(problem, dict) else problem[0]
    return str(problem)
