"""Read a roster file as a stream of physical lines of cells: CSV (UTF-8, UTF-8 with BOM or
GB18030; comma, semicolon or tab) or XLSX (first sheet or a named one)."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from server.errors import MusterError
from sync.protocol import ErrorCode

_SNIFF_BYTES = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls


@dataclass
class Line:
    """One data line: its physical line number (header is 1) and its cells."""

    number: int
    cells: list[Any]


class RosterFile:
    """An open roster: ``header`` (the first line's cells) and an iterator of data lines."""

    def __init__(
        self,
        kind: str,
        header: list[str],
        lines: Iterator[Line],
        encoding: str = "",
        delimiter: str = "",
    ) -> None:
        self.kind = kind
        self.header = header
        self.lines = lines
        self.encoding = encoding
        self.delimiter = delimiter


def unreadable(message: str, **details: Any) -> MusterError:
    return MusterError(message, code=ErrorCode.ROSTER_UNREADABLE, details=details or None)


def open_roster(stream: IO[bytes], sheet: str | None = None) -> RosterFile:
    """Open a binary stream as a roster; refuse empty, binary or undecodable files."""
    head = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    if not head.removeprefix(codecs.BOM_UTF8).strip():
        raise MusterError("The roster file is empty.", code=ErrorCode.ROSTER_INVALID)
    if head.startswith(_ZIP_MAGIC):
        return _open_xlsx(stream, sheet)
    if head.startswith(_OLE_MAGIC):
        raise unreadable("Old Excel (.xls) files are not read: save the list as .xlsx or CSV.")
    return _open_csv(stream, head)


def detect_encoding(head: bytes) -> str:
    """UTF-8 with BOM, else UTF-8 when the first chunk decodes strictly, else GB18030."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in head:
        raise unreadable("The file is not a CSV or XLSX roster (it holds binary data).")
    for encoding in ("utf-8", "gb18030"):
        try:
            # The chunk may end inside a character: a final incremental decode allows that.
            codecs.getincrementaldecoder(encoding)("strict").decode(head, final=False)
            return encoding
        except UnicodeDecodeError:
            continue
    raise unreadable("The file is neither UTF-8 nor GB18030 text, nor an XLSX workbook.")


def _sniff_delimiter(sample: str) -> str:
    first = sample.splitlines()[0] if sample else ""
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _open_csv(stream: IO[bytes], head: bytes) -> RosterFile:
    encoding = detect_encoding(head)
    text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
    try:
        sample = head.decode(encoding, errors="ignore")
        delimiter = _sniff_delimiter(sample)
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise unreadable("The header line cannot be read.", line=1) from exc
    if not header or not any(cell.strip() for cell in header):
        raise MusterError("The roster file has no header line.", code=ErrorCode.ROSTER_INVALID)
    if any(_looks_binary(cell) for cell in header):
        raise unreadable("The file is not a CSV or XLSX roster (it holds binary data).")
    return RosterFile("csv", header, _csv_lines(reader, text), encoding, delimiter)


def _looks_binary(cell: str) -> bool:
    return any(ord(c) < 32 and c not in "\t\r\n" for c in cell)


def _csv_lines(reader: Any, text: io.TextIOWrapper) -> Iterator[Line]:
    previous = reader.line_num
    try:
        for cells in reader:
            yield Line(previous + 1, cells)
            previous = reader.line_num
    except UnicodeDecodeError as exc:
        raise unreadable(
            "The file changes encoding part-way; save it again as UTF-8.", line=previous + 1
        ) from exc
    except csv.Error as exc:
        raise unreadable(
            "A line cannot be read as CSV (an unclosed quote?).", line=previous + 1
        ) from exc
    finally:
        text.detach()


def _open_xlsx(stream: IO[bytes], sheet: str | None) -> RosterFile:
    from openpyxl import load_workbook

    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise unreadable("The file looks like a ZIP archive but is not an XLSX workbook.") from exc
    if sheet is not None and sheet not in book.sheetnames:
        book.close()
        raise MusterError(
            f"The workbook has no sheet named '{sheet}'.",
            code=ErrorCode.ROSTER_INVALID,
            details={"sheets": book.sheetnames},
        )
    ws = book[sheet] if sheet is not None else book.worksheets[0]
    rows = ws.iter_rows(values_only=True)
    header_row = next(rows, None)
    if header_row is None or not any(_cell_text(c) for c in header_row):
        book.close()
        raise MusterError("The sheet has no header row.", code=ErrorCode.ROSTER_INVALID)
    header = [_cell_text(c) for c in header_row]
    return RosterFile("xlsx", header, _xlsx_lines(rows, book))


def _xlsx_lines(rows: Iterator[tuple[Any, ...]], book: Any) -> Iterator[Line]:
    try:
        for number, values in enumerate(rows, start=2):
            yield Line(number, list(values))
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


cell_text = _cell_text
