"""Write refused rows to a CSV the operator can fix and import again: the original header and
cells plus an ``error`` column, UTF-8 with a BOM so that Excel opens it correctly."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

from server.rosters.reader import cell_text
from server.rosters.rows import RowError


class RejectsFile:
    """A rejects CSV, created on the first refused row (no file when every row is good)."""

    def __init__(self, path: str | Path, header: list[str]) -> None:
        self.path = Path(path)
        self.header = header
        self.count = 0
        self._file: IO[str] | None = None
        self._writer: Any = None

    def write(self, cells: list[Any], errors: list[RowError]) -> None:
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow([*self.header, "error"])
        width = len(self.header)
        padded = [cell_text(c) for c in cells[:width]] + [""] * (width - len(cells))
        reason = "; ".join(f"line {e.line}, {e.column}: {e.reason}" for e in errors)
        self._writer.writerow([*padded, reason])
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
