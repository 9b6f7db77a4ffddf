"""The self-contained HTML report: inline CSS and an inline SVG chart, nothing fetched."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from server.models import Operation
from server.reports.content import ReportData
from server.reports.labels import both
from server.reports.sections import build_sections, heading

_CSS = """
body{font-family:"Noto Sans SC","Noto Sans",system-ui,sans-serif;margin:2rem auto;max-width:60rem;
color:#1f2933;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.3rem}h2{font-size:1.1rem;margin:1.6rem 0 .4rem}
p{margin:.2rem 0}.caveat{color:#52606d;font-size:.9rem;margin-top:.8rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border:1px solid #cbd2d9;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#e8edf3;white-space:pre-line}tr:nth-child(even) td{background:#f6f8fa}
svg{max-width:100%;height:auto}.legend span{margin-right:1rem}
@media print{body{margin:0}h2{break-after:avoid}}
"""

#: Series of the chart: key in the history points, colour.
_SERIES = (
    ("expected", "#52606d"),
    ("accounted", "#2f8132"),
    ("unaccounted", "#c62828"),
    ("needs_assistance", "#d97706"),
)


def chart(points: list[dict[str, Any]]) -> str:
    """An SVG line chart of the numbers over the operation's nights (one point per night)."""
    width, height, left, bottom, top = 640, 240, 48, 36, 12
    top_value = max([p[k] for p in points for k, _ in _SERIES] + [1])
    n = len(points)

    def x(i: int) -> float:
        return left + (width - left - 12) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: int) -> float:
        return top + (height - top - bottom) * (1 - v / top_value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(both("history"))}">',
        f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - 12}" y2="{y(0):.1f}" stroke="#9aa5b1"/>',
        f'<text x="{left - 6}" y="{y(top_value) + 4:.1f}" font-size="11" '
        f'text-anchor="end">{top_value}</text>',
        f'<text x="{left - 6}" y="{y(0) + 4:.1f}" font-size="11" text-anchor="end">0</text>',
    ]
    for i, p in enumerate(points):
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 14}" font-size="11" '
            f'text-anchor="middle">{escape(p["date"][5:])}</text>'
        )
    for key, colour in _SERIES:
        coords = " ".join(f"{x(i):.1f},{y(p[key]):.1f}" for i, p in enumerate(points))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>'
        )
        for i, p in enumerate(points):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(p[key]):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(p['date'])}: {p[key]}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    from server.reports.labels import LABELS, STATE_LABELS

    names = {**LABELS, **STATE_LABELS}
    return "".join(f'<span style="color:{c}">■ {escape(both(k, names))}</span>' for k, c in _SERIES)


def render(data: ReportData, op: Operation, path: Path) -> None:
    """Write the HTML report of ``data`` to ``path``."""
    title, lines = heading(data, op)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{escape(title)} {escape(data.summary['date'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *(f"<p>{escape(line)}</p>" for line in lines),
        f'<p class="caveat">{escape(both("caveat"))}</p>',
        f"<h2>{escape(both('history'))}</h2>",
        chart(data.summary["history"]),
        f'<p class="legend">{_legend()}</p>',
    ]
    for s in build_sections(data, op):
        out.append(f"<h2>{escape(s.title)}</h2>")
        out += [f"<p>{escape(n)}</p>" for n in s.notes]
        if not s.rows:
            out.append(f"<p>{escape(both('none'))}</p>")
            continue
        out.append("<table><thead><tr>")
        out += [f"<th>{escape(h)}</th>" for h in s.header]
        out.append("</tr></thead><tbody>")
        for row in s.rows:
            out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
        out.append("</tbody></table>")
    out.append("</body></html>\n")
    path.write_text("\n".join(out), encoding="utf-8")
