"""The printable A4 report for the ministry, with Chinese text in an embedded font subset.

Reproducible byte for byte: ReportLab's ``invariant`` mode fixes the creation date and the
document id, the document info is fixed, and the font subset depends only on the characters.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from server.models import Operation
from server.reports import fonts
from server.reports.content import ReportData
from server.reports.labels import all_text, both
from server.reports.sections import Section, build_sections, heading

_MARGIN = 15 * mm
_WIDTH = A4[0] - 2 * _MARGIN
#: Rows per table: longer sections are printed as consecutive tables (header on each).
_CHUNK = 200


def _font(text: str, cache_dir: str | os.PathLike[str]) -> str:
    """Register (once) the font subset for ``text``; return its ReportLab name."""
    path = fonts.truetype_subset(text, cache_dir)
    name = "MusterSC-" + hashlib.sha256(path.name.encode()).hexdigest()[:8]
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(path)))
    return name


def _texts(title: str, lines: list[str], sections: list[Section], footer: str) -> str:
    parts = [title, footer, all_text(), "0123456789 →…:/()-", *lines]
    for s in sections:
        parts += [s.title, *s.notes, *s.header]
        parts += [cell for row in s.rows for cell in row]
    return "".join(parts)


def render(data: ReportData, op: Operation, path: Path, font_cache: str | os.PathLike[str]) -> None:
    """Write the PDF report of ``data`` to ``path``."""
    title, lines = heading(data, op)
    sections = build_sections(data, op)
    footer = f"Muster · {op.name} · {data.summary['date']} · {both('cutoff')} {data.summary['cutoff_utc']}"
    font = _font(_texts(title, lines, sections, footer), font_cache)
    h1 = ParagraphStyle("h1", fontName=font, fontSize=16, leading=21, spaceAfter=4)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=11.5, leading=15, spaceBefore=9, spaceAfter=3)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    head = ParagraphStyle("head", fontName=font, fontSize=7.5, leading=9.5)
    story: list[Any] = [Paragraph(escape(title), h1)]
    story += [Paragraph(escape(line), body) for line in lines]
    story.append(Spacer(1, 3 * mm))
    story.append(Paragraph(escape(both("caveat")), body))
    for s in sections:
        story.append(Paragraph(escape(s.title), h2))
        story += [Paragraph(escape(n), body) for n in s.notes]
        if not s.rows:
            story.append(Paragraph(escape(both("none")), body))
            continue
        style = TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), font, 8, 10),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf3")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa5b1")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f6f8fa")]),
            ]
        )
        # ReportLab re-measures and rebuilds the rest of a table at every page break, so one
        # table of n rows costs n * pages; tables of _CHUNK rows keep long lists linear.
        for start in range(0, len(s.rows), _CHUNK):
            table = Table(
                [
                    [Paragraph(escape(h).replace("\n", "<br/>"), head) for h in s.header],
                    *s.rows[start : start + _CHUNK],
                ],
                colWidths=[w * _WIDTH for w in s.widths],
                repeatRows=1,
            )
            table.setStyle(style)
            story.append(table)

    def page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.drawString(_MARGIN, 8 * mm, footer)
        canvas.drawRightString(A4[0] - _MARGIN, 8 * mm, f"{both('page')} {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + 4 * mm,
        title=f"{both('title')} {data.summary['date']}",
        author="Muster",
        subject=op.name,
        creator="Muster",
        invariant=1,
    )
    doc.build(story, onFirstPage=page, onLaterPages=page)
