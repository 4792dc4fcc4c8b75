"""Rules for what an item id and a description may hold. Pure: no I/O."""

from __future__ import annotations

import unicodedata

from ..errors import UsageError
from ..text import UNSAFE_CATEGORIES, printable

MAX_ID_LENGTH = 200
"""Longest item id, in characters: ids are keys people type and scripts pass on argv."""

MAX_DESCRIPTION_BYTES = 1024 * 1024
"""Largest description, in bytes of UTF-8: an item is a record, not a file store."""


class InvalidInput(UsageError):
    """An id or description that breaks a rule; nothing is written."""


def _first_unsafe(text: str) -> str | None:
    for ch in text:
        if unicodedata.category(ch) in UNSAFE_CATEGORIES:
            return ch
    return None


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def validate_item_id(raw: str) -> str:
    """The id in its one stored form (Unicode NFC), or InvalidInput."""
    if not raw:
        raise InvalidInput("invalid item id: it is empty")
    shown = printable(raw)
    if _has_surrogates(raw):
        raise InvalidInput(f"invalid item id '{shown}': it is not valid UTF-8")
    if raw != raw.strip():
        raise InvalidInput(f"invalid item id '{shown}': it starts or ends with whitespace")
    if not raw.isprintable():
        bad = _first_unsafe(raw)
        if bad is not None:
            raise InvalidInput(
                f"invalid item id '{shown}': it contains the control or format character "
                f"U+{ord(bad):04X}"
            )
    # One normal form, so that an id typed with a combining accent and the same id
    # typed precomposed name the same item. The limit applies to the stored form.
    item_id = unicodedata.normalize("NFC", raw)
    if len(item_id) > MAX_ID_LENGTH:
        raise InvalidInput(
            f"invalid item id: {len(item_id)} characters, more than the limit of {MAX_ID_LENGTH}"
        )
    return item_id


def validate_description(raw: str) -> str:
    """The description exactly as given, or InvalidInput. Newlines, tabs and other text
    are kept byte for byte; only NUL and text that is not UTF-8 are refused."""
    if "\x00" in raw:
        raise InvalidInput("invalid description: it contains a NUL character")
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput("invalid description: it is not valid UTF-8") from None
    if size > MAX_DESCRIPTION_BYTES:
        raise InvalidInput(
            f"invalid description: {size} bytes, more than the limit of "
            f"{MAX_DESCRIPTION_BYTES} bytes"
        )
    return raw


def validate_text(what: str, raw: str) -> str:
    """Other text from the command line (search words, prefixes): it must be UTF-8."""
    if _has_surrogates(raw):
        raise InvalidInput(f"invalid {what} '{printable(raw)}': it is not valid UTF-8")
    return raw
