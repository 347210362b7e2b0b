"""The lineage picture as PNG, which Claude Desktop and most MCP clients show (image content as SVG they do not).

graph.svg draws the picture; resvg rasterises it in process (the resvg-py wheel ships it: no system library, no
graphviz, no cairo). Text needs a font and resvg finds none for `sans-serif` on a machine without Arial, so DejaVu Sans
is bundled (fonts/, cut to Latin-1, 22 KB): a picture whose text is all Latin-1 is drawn with it alone (same pixels on
every machine, no font scan); other text also loads the system's fonts for the missing letters.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path

FONT = Path(__file__).parent / "fonts" / "DejaVuSans-latin1.ttf"
FAMILY = "DejaVu Sans"
FILL_PIXELS = 1_150_000  # what Claude shows without scaling it down (and at most 1568 px on the long side)
MAX_ZOOM = 2.0
MAX_PIXELS = 12_000_000  # past this a picture is scaled down (no text is legible in it anyway)


class PictureUnavailable(Exception):
    """The PNG cannot be made here (no resvg-py, or it failed): the caller sends the SVG instead."""


@dataclass
class Png:
    data: bytes
    width: int
    height: int


def zoom_for(width: float, height: float) -> float:
    """Scale a small picture up to fill what a client shows unscaled (up to 2x); never scale a large one down below
    1x (12 px text) unless it passes MAX_PIXELS."""
    fill = min(MAX_ZOOM, 1568 / max(width, height), math.sqrt(FILL_PIXELS / (width * height)))
    return min(max(1.0, fill), math.sqrt(MAX_PIXELS / (width * height)))


def png(svg_text: str) -> Png:
    size = re.search(r'<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"', svg_text)
    if size is None:
        raise PictureUnavailable("the SVG has no width and height")
    try:
        import resvg_py
    except ImportError as exc:
        raise PictureUnavailable(f"resvg-py is not installed ({exc})") from exc
    bundled = FONT.is_file()
    latin1 = all(ord(c) < 0x100 or c == "…" for c in svg_text)
    try:
        data = bytes(resvg_py.svg_to_bytes(
            svg_string=svg_text, zoom=zoom_for(float(size[1]), float(size[2])), font_files=[str(FONT)] if bundled else None,
            font_family=FAMILY, sans_serif_family=FAMILY, skip_system_fonts=bundled and latin1))
    except Exception as exc:  # the renderer's own failure: the caller falls back to the SVG
        raise PictureUnavailable(f"resvg could not render it ({exc})") from exc
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise PictureUnavailable("resvg returned no PNG")
    width, height = struct.unpack(">II", data[16:24])
    return Png(data, width, height)
