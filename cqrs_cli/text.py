"""Making user text safe to show on a terminal.

Ids and descriptions are data: they may hold escape sequences (`\\x1b[2J`, OSC 8
links), carriage returns, bidi overrides or zero-width characters. Human output
shows each such character as a visible escape (`\\x1b`, `\\u202e`) so that nothing a
user stored can move the cursor, recolour, hide or reorder what the terminal shows.
Machine output (JSON) keeps the exact text, with the same characters \\u-escaped.
"""

from __future__ import annotations

import unicodedata

# Unicode categories that are never shown as they are: controls (Cc), format
# characters such as bidi overrides and zero-width joiners (Cf), line and paragraph
# separators (Zl, Zp) and lone surrogates (Cs: undecodable bytes from argv).
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


JOINERS = frozenset("\u200c\u200d")
"""Zero-width non-joiner and joiner: format characters that are part of how text is
written (Persian and other scripts, emoji sequences such as 👩‍💻). They neither move
the cursor nor reorder text, so human output shows them as they are; every other format
character (bidi overrides, zero-width spaces, tag characters) is escaped."""


def is_unsafe(ch: str) -> bool:
    return ch not in JOINERS and unicodedata.category(ch) in UNSAFE_CATEGORIES


def printable(text: str) -> str:
    """`text` with every unsafe character replaced by a visible escape."""
    if text.isprintable():  # fast path: str.isprintable() is False for all of them
        return text
    return "".join(_escape(ch) if is_unsafe(ch) else ch for ch in text)


_JSON_UNSAFE = {
    code: f"\\u{code:04x}"
    for code in [
        *range(0x7F, 0xA0),
        0x061C,
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        *range(0x2028, 0x202F),
        *range(0x2060, 0x2070),
        0xFEFF,
    ]
}


def json_safe(encoded: str) -> str:
    """Escape, inside JSON text, the characters `json.dumps(ensure_ascii=False)` leaves raw
    that a terminal may act on (C1 controls, bidi and zero-width characters).

    They can only occur inside JSON strings, where `\\uXXXX` means the same character,
    so the document decodes to exactly the same value.
    """
    # The usual case first: ASCII (an O(1) flag in CPython) with no DEL, the only one of
    # these characters below U+0080.
    if encoded.isascii() and "\x7f" not in encoded:
        return encoded
    return encoded.translate(_JSON_UNSAFE)
