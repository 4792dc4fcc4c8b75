"""Text people write shows as they wrote it; what could disguise it or drive the terminal
is escaped (cqrs_cli/text.py)."""

from __future__ import annotations

import sys

import pytest
from common import InProcessCli

PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want" in Persian, with a ZWNJ
CODER = "👩\u200d💻"  # one emoji: woman, zero-width joiner, laptop


def test_joiners_in_writing_and_emoji_are_shown_as_written(cli: InProcessCli) -> None:
    assert cli("item", "create", "Item1", "-d", f"{PERSIAN} {CODER}").code == 0
    assert cli("sync").code == 0
    assert cli("item", "get", "Item1").out == f"Item1: {PERSIAN} {CODER}\n"


def test_what_can_disguise_text_is_still_escaped(cli: InProcessCli) -> None:
    # A bidi override reorders what follows it; a zero-width space hides a break in a
    # word; a BOM and tag characters are invisible.
    text = "a\u202eb c\u200bd \ufeffe \U000e0041"
    assert cli("item", "create", "Item1", "-d", text).code == 0
    assert cli("sync").code == 0
    shown = cli("item", "get", "Item1").out
    assert shown == "Item1: a\\u202eb c\\u200bd \\ufeffe \\U000e0041\n"


def test_raw_prints_a_multi_line_description_as_stored(cli: InProcessCli) -> None:
    text = "line one\nline\ttwo\n\x1b[31mred"
    assert cli("item", "create", "Item1", "-d", "-", stdin=text.encode()).code == 0
    assert cli("sync").code == 0
    # Piped: exactly as stored, and a newline to end the line.
    assert cli("item", "get", "Item1", "--raw").out == text + "\n"
    assert cli("item", "get", "Item1").out == "Item1: line one\\x0aline\\x09two\\x0a\\x1b[31mred\n"
    refused = cli("item", "get", "Item1", "--raw", "--json")
    assert refused.code == 2 and "--json and --raw cannot be used together" in refused.err


def test_raw_on_a_terminal_still_escapes_what_could_drive_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cqrs_cli.cli.read_commands import _write_raw

    class Terminal:
        written = ""

        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            self.written += text
            return len(text)

    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    _write_raw("line one\nline\ttwo\n\x1b[31mred")
    assert terminal.written == "line one\nline\ttwo\n\\x1b[31mred\n"
