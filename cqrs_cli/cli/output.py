"""Writing to the terminal or a pipe: data on stdout, messages on stderr.

Human output passes user text through `printable`, so stored escape sequences never
reach the terminal; JSON output keeps the exact text, \\u-escaping the same characters.
Nothing here imports rich: the hot commands print plain lines. A reader that goes
away (`| head -1`) surfaces as StdoutClosed, which main() turns into a quiet exit 0 and
`cqrs apply` into a note, so that a batch is not cut short by its own output.
"""

from __future__ import annotations

import os
import sys

from ..text import json_safe, printable
from .state import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO


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


class StdoutClosed(Exception):
    """stdout's reader went away. Not an OSError, so that nothing between a write and
    run() (typer turns EPIPE into exit 1) mistakes it for another failure."""


class GuardedStdout:
    """sys.stdout, with a broken pipe raised as StdoutClosed."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise StdoutClosed from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise StdoutClosed from None

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
