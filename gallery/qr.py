"""QR codes of event join links, for the photographer to print or show."""

from __future__ import annotations

import io

import segno

# Quartile error correction: a printed code still scans when a quarter of it
# is scuffed, folded or covered by a thumb.
ERROR_LEVEL = "q"
# Four modules of quiet zone is what the QR standard asks for around the code.
BORDER = 4
PNG_SCALE = 10
SVG_SCALE = 10


def _code(text: str) -> segno.QRCode:
    return segno.make(text, error=ERROR_LEVEL, micro=False)


def qr_png(text: str) -> bytes:
    """A PNG of the QR code of `text`, about 400 px wide for a typical join link."""
    buffer = io.BytesIO()
    _code(text).save(buffer, kind="png", scale=PNG_SCALE, border=BORDER)
    return buffer.getvalue()


def qr_svg(text: str, title: str) -> bytes:
    """An SVG of the QR code of `text`: scales without blur for print.

    `title` becomes the SVG <title>, which screen readers announce.
    """
    buffer = io.BytesIO()
    _code(text).save(buffer, kind="svg", scale=SVG_SCALE, border=BORDER, title=title, xmldecl=True)
    return buffer.getvalue()


def qr_svg_inline(text: str, title: str) -> str:
    """The QR code of `text` as an <svg> element for a page: no XML declaration, no style attribute."""
    return str(_code(text).svg_inline(scale=4, border=BORDER, title=title))
