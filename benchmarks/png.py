"""A bar chart of the ratios as a PNG, with nothing but zlib and struct.

One band per row: a bar from 1x to the ratio to the baseline (blue) and one to the
ratio to eventsourcing (orange), on a log scale, each with its min-max whisker, and the
goal as a red mark. Text is drawn with a 5x7 bitmap font (capitals, digits and the
punctuation the labels use).
"""

from __future__ import annotations

import math
import struct
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .harness import Row
    from .stats import Summary

Color = tuple[int, int, int]

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (200, 200, 200)
DARK_GREY: Color = (110, 110, 110)
BLUE: Color = (54, 110, 190)
ORANGE: Color = (235, 140, 40)
RED: Color = (210, 30, 30)

# Rows of 5 pixels, most significant bit on the left.
FONT: dict[str, tuple[int, ...]] = {
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    " ": (0, 0, 0, 0, 0, 0, 0),
    ".": (0, 0, 0, 0, 0, 0x0C, 0x0C),
    ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0),
    ";": (0, 0x0C, 0x0C, 0, 0x0C, 0x04, 0x08),
    "-": (0, 0, 0, 0x1F, 0, 0, 0),
    "+": (0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0),
    "/": (0, 0x01, 0x02, 0x04, 0x08, 0x10, 0),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "'": (0x0C, 0x04, 0x08, 0, 0, 0, 0),
    "*": (0, 0x04, 0x15, 0x0E, 0x15, 0x04, 0),
    "=": (0, 0, 0x1F, 0, 0x1F, 0, 0),
    "<": (0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02),
    ">": (0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08),
    "_": (0, 0, 0, 0, 0, 0, 0x1F),
    "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03),
    "!": (0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04),
}
UNKNOWN = (0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F)
GLYPH_WIDTH = 6  # 5 pixels and a space


class Canvas:
    """An RGB image in memory."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        line = bytes(color) * (x1 - x0)
        for row in range(y0, y1):
            start = (row * self.width + x0) * 3
            self.pixels[start : start + len(line)] = line

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 1) -> int:
        """Draw `text` with its top left at (x, y); return the x after it."""
        for char in text:
            glyph = FONT.get(char.upper(), UNKNOWN)
            for row, bits in enumerate(glyph):
                for col in range(5):
                    if bits & (0x10 >> col):
                        self.rect(x + col * scale, y + row * scale, scale, scale, color)
            x += GLYPH_WIDTH * scale
        return x

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[row * stride : (row + 1) * stride])
            for row in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


WIDTH = 960
LABEL_WIDTH = 330
PLOT_LEFT = LABEL_WIDTH + 10
PLOT_RIGHT = WIDTH - 70
TOP = 64
BAND = 46
LOWEST, HIGHEST = 1 / 16, 16.0
TICKS = tuple(
    (2.0**power, f"1/{2**-power}" if power < 0 else f"{2**power}") for power in range(-4, 5)
)


def _x(ratio: float) -> int:
    ratio = min(max(ratio, LOWEST), HIGHEST)
    share = (math.log2(ratio) - math.log2(LOWEST)) / (math.log2(HIGHEST) - math.log2(LOWEST))
    return round(PLOT_LEFT + share * (PLOT_RIGHT - PLOT_LEFT))


def _bar(canvas: Canvas, y: int, ratio: Summary, color: Color) -> None:
    one, end = _x(1), _x(ratio.median)
    canvas.rect(min(one, end), y, max(abs(end - one), 2), 12, color)
    low, high = _x(ratio.low), _x(ratio.high)
    canvas.rect(low, y + 5, max(high - low, 1), 2, BLACK)
    canvas.rect(low, y + 2, 1, 8, BLACK)
    canvas.rect(high, y + 2, 1, 8, BLACK)
    canvas.text(max(end, high) + 4, y + 3, f"{ratio.median:.2f}x", DARK_GREY)


def chart(rows: Sequence[Row], title: str) -> bytes:
    """The PNG chart of `rows`' ratios."""
    height = TOP + BAND * len(rows) + 40
    canvas = Canvas(WIDTH, height)
    canvas.text(10, 10, title, BLACK, scale=2)
    x = canvas.text(10, 36, "LOG SCALE.  ", DARK_GREY)
    for label, color in (("X BASELINE", BLUE), ("X EVENTSOURCING", ORANGE), ("GOAL", RED)):
        canvas.rect(x, 36, 10, 7, color)
        x = canvas.text(x + 14, 36, label + "   ", DARK_GREY)
    canvas.text(x, 36, "(MS: LOWER IS BETTER; EVENTS/S: HIGHER)", DARK_GREY)
    bottom = TOP + BAND * len(rows)
    for value, label in TICKS:
        tick = _x(value)
        canvas.rect(tick, TOP - 4, 1, bottom - TOP + 8, BLACK if value == 1 else GREY)
        canvas.text(tick - len(label) * GLYPH_WIDTH // 2, bottom + 8, label, DARK_GREY)
    for index, row in enumerate(rows):
        y = TOP + index * BAND
        if index:
            canvas.rect(10, y, WIDTH - 20, 1, GREY)
        label = row.label if len(row.label) <= 54 else row.label[:53] + "."
        canvas.text(10, y + 10, label)
        canvas.text(10, y + 24, row.subject.unit, DARK_GREY)
        if row.vs_baseline is not None:
            _bar(canvas, y + 8, row.vs_baseline, BLUE)
        if row.vs_peer is not None:
            _bar(canvas, y + 26, row.vs_peer, ORANGE)
        if row.goal is not None and not row.goal.absolute:  # absolute: not a ratio
            canvas.rect(_x(row.goal.limit) - 1, y + 4, 3, 20, RED)
    return canvas.png()
