"""An embeddable CJK font for the PDF: a subset of Noto Sans SC converted to TrueType outlines.

ReportLab embeds only TrueType (``glyf``) fonts; Noto Sans SC (SIL OFL, from the
``pylopdf-fonts-zh-cn`` package) ships CFF outlines. So for the characters a report uses, we
subset the font with fontTools and convert its cubic curves to quadratic ones (cu2qu, as
fontTools' otf2ttf snippet does). The result depends only on the character set and is cached
on disk by its digest, so a night's report is reproducible byte for byte and the ~1 s of
conversion is paid once per character set.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

#: Bump when the conversion changes, so cached files are not reused across versions.
_VERSION = "1"
#: 1.0 font unit of maximum error, what fontTools' otf2ttf uses for 1000-unit fonts.
_MAX_ERR = 1.0


class FontUnavailable(RuntimeError):
    """The CJK source font is not installed (``pip install pylopdf-fonts-zh-cn``)."""


def source_font() -> Path:
    """The installed Noto Sans SC OpenType file."""
    try:
        import pylopdf_fonts_zh_cn
    except ImportError as exc:  # pragma: no cover - a deployment error
        raise FontUnavailable("Install pylopdf-fonts-zh-cn for Chinese text in PDFs.") from exc
    return Path(pylopdf_fonts_zh_cn.__file__).parent / "NotoSansSC-Regular.otf"


def _to_truetype(font: TTFont) -> None:
    """Replace the CFF outlines of ``font`` with quadratic TrueType ones, in place."""
    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    drawn = {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        glyphs[name].draw(Cu2QuPen(pen, _MAX_ERR, reverse_direction=True))
        drawn[name] = pen.glyph()
    font["loca"] = newTable("loca")
    glyf = font["glyf"] = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = drawn
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    maxp = font["maxp"] = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in (
        "maxZones",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font["head"].indexToLocFormat = 0
    font["head"].glyphDataFormat = 0
    font.sfntVersion = "\x00\x01\x00\x00"


def truetype_subset(text: str, cache_dir: str | os.PathLike[str]) -> Path:
    """A TrueType font file covering the characters of ``text`` (cached by character set)."""
    chars = "".join(sorted({c for c in text if c.isprintable()} | {" "}))
    digest = hashlib.sha256((_VERSION + chars).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"noto-sans-sc-{digest}.ttf"
    if path.exists():
        return path
    font = TTFont(source_font(), lazy=True, recalcTimestamp=False)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.glyph_names = True
    options.layout_features = []  # ReportLab shapes nothing; keeps the subset small
    sub = subset.Subsetter(options)
    sub.populate(text=chars)
    sub.subset(font)
    _to_truetype(font)
    buf = io.BytesIO()
    font.save(buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return path
