"""Read a PNG with the standard library (no Pillow here) and look at its pixels: enough to check that the lineage
picture decodes, has the size it should, and has a node's name drawn where the SVG puts it."""

from __future__ import annotations

import html
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        start = x * self.channels
        return tuple(self.rows[y][start:start + self.channels])

    def crop(self, box: tuple[int, int, int, int]) -> list[bytes]:
        x0, y0, x1, y1 = box
        return [row[x0 * self.channels:x1 * self.channels] for row in self.rows[y0:y1]]

    def ink(self, box: tuple[int, int, int, int], darker_than: int = 110) -> int:
        """Pixels in the box darker than `darker_than` (0-255 luminance, drawn over white): the text's black."""
        count = 0
        for y in range(box[1], box[3]):
            for x in range(box[0], box[2]):
                px = self.pixel(x, y)
                alpha = px[3] / 255 if self.channels == 4 else 1.0
                lum = (0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]) * alpha + 255 * (1 - alpha)
                count += lum < darker_than
        return count


def decode(data: bytes) -> Image:
    """An 8-bit RGB or RGBA, non-interlaced PNG (what resvg writes), every row unfiltered."""
    assert data[:8] == SIGNATURE, "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0], f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header is not None, "no IHDR"
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    channels = 4 if color == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    assert len(raw) == height * (stride + 1), "IDAT does not hold width x height pixels"
    rows: list[bytes] = []
    prior = bytearray(stride)
    for r in range(height):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prior))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prior[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prior[i], prior[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert kind == 0, f"unknown filter {kind}"
        rows.append(bytes(line))
        prior = line
    return Image(width, height, channels, rows)


@dataclass
class Label:
    name: str
    x: float  # the text's start and baseline, in SVG units
    y: float
    width: float  # of the name as the SVG draws it (its textLength when squeezed)


def svg_size(svg: str) -> tuple[float, float]:
    found = re.search(r'<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"', svg)
    assert found, "the SVG has no size"
    return float(found[1]), float(found[2])


def svg_labels(svg: str) -> list[Label]:
    """The node names the SVG draws (the 12 px text in each box; the 10 px line under it is the type)."""
    from tools.lineage.graph import text_width

    labels = []
    for attrs, text in re.findall(r"<text ([^>]*)>([^<]*)</text>", svg):
        if "font-size" in attrs:
            continue
        x, y = (float(re.search(rf'\b{k}="([\d.]+)"', attrs)[1]) for k in ("x", "y"))  # type: ignore[index]
        squeezed = re.search(r'textLength="([\d.]+)"', attrs)
        name = html.unescape(text)
        labels.append(Label(name, x, y, float(squeezed[1]) if squeezed else text_width(name, 12)))
    return labels


def label_box(label: Label, zoom: float) -> tuple[int, int, int, int]:
    """Where a 12 px name is drawn, in PNG pixels: from its start to its end, cap height above the baseline to the
    descenders below it."""
    return (int(label.x * zoom), int((label.y - 10) * zoom), int((label.x + label.width) * zoom) + 1, int((label.y + 3) * zoom) + 1)


def expected_zoom(width: float, height: float) -> float:
    """What the picture promises: scaled to fill about 1.15 MP (what Claude shows unscaled) with the long side at most
    1568 px, between 1x and 2x; a larger picture stays at 1x (12 px text)."""
    return max(1.0, min(2.0, 1568 / max(width, height), (1_150_000 / (width * height)) ** 0.5))


def check_picture(png: bytes, svg: str, render: Callable[[str], bytes]) -> Image:
    """The PNG sent for a graph whose SVG is `svg`: it decodes, has the promised size, and shows every node's name:
    ink in each name's place, the very bytes a render of that SVG gives, and other pixels in each name's place when
    only the name's first letter changes (`render` is the renderer, run in the test's process)."""
    image = decode(png)
    width, height = svg_size(svg)
    zoom = expected_zoom(width, height)
    assert (image.width, image.height) == (int(width * zoom + 0.5), int(height * zoom + 0.5)), (image.width, image.height, width, height)
    labels = svg_labels(svg)
    assert labels, "the SVG draws no names"
    for label in labels:
        ink = image.ink(label_box(label, zoom))
        assert ink >= 3 * len(label.name.replace(" ", "")), f"{label.name!r}: {ink} dark pixels where the name should be"
    assert render(svg) == png, "the PNG is not the SVG's picture"
    changed_svg = svg
    for label in labels:
        first = "Q" if label.name[0] != "Q" else "Z"
        changed_svg = changed_svg.replace(f">{html.escape(label.name)}</text>", f">{html.escape(first + label.name[1:])}</text>", 1)
    changed = decode(render(changed_svg))
    for label in labels:
        box = label_box(label, zoom)
        assert image.crop(box) != changed.crop(box), f"{label.name!r}: the pixels do not depend on the name"
    return image
