"""Text people write shows as they wrote it; what could disguise it or drive the terminal
is escaped (cqrs_cli/text.py)."""

from __future__ import annotations

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
