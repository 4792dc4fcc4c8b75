"""Every command explains itself: a one-line summary and an example in its --help."""

from __future__ import annotations

import pytest

from cqrs_cli.cli.main import run

COMMANDS = [
    ["item", "create"],
    ["item", "update"],
    ["item", "delete"],
    ["item", "get"],
    ["item", "list"],
    ["item", "history"],
    ["item", "search"],
    ["sync"],
    ["status"],
    ["apply"],
    ["events"],
    ["journal", "verify"],
    ["journal", "export"],
    ["journal", "import"],
    ["journal", "backup"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_a_summary_and_an_example(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one summary line, however long
    assert run([*command, "--help"]) == 0
    out = capsys.readouterr().out
    lines = [line.strip(" │") for line in out.splitlines() if line.strip(" │")]
    assert lines[0].startswith(f"Usage: cqrs {' '.join(command)}")
    summary = lines[1]
    assert summary.endswith(".") or summary.endswith(")") or summary.endswith("`"), summary
    assert "Example: " in out


def test_the_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("item", "journal", "sync", "status", "apply", "events"):
        assert f" {name} " in out
