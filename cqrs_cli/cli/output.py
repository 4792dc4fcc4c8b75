"""Writing to the terminal or a pipe: data on stdout, messages on stderr.

Human output passes user text through `printable`, so stored escape sequences never
reach the terminal; JSON output keeps the exact text, \\u-escaping the same characters.
Nothing here imports rich: the hot commands print plain lines.
"""

from __future__ import annotations

import sys

from ..text import json_safe, printable
from .state import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def data(line: str) -> None:
    """A line of human-readable data on stdout (user text made safe)."""
    sys.stdout.write(printable(line) + "\n")


def json_line(value: Any) -> None:
    """One JSON document on one line of stdout."""
    import json

    sys.stdout.write(json_safe(json.dumps(value, ensure_ascii=False)) + "\n")


def note(message: str) -> None:
    """A message for people on stderr; silenced by -q."""
    if not state.quiet:
        sys.stderr.write(printable(message) + "\n")


def error_line(message: str) -> None:
    sys.stderr.write(f"cqrs: error: {printable(message)}\n")
