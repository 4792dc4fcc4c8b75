"""Conditions a user meets that must end in one clear line and a documented exit code,
at once, with nothing written: special files given as the journal or projection, a
write refused against a store with no journal yet, a typo in an option with a fixed set
of values, a time that parses but leaves the calendar."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import InProcessCli, child_env, event_rows, one_error_line, run_cqrs

# A FIFO blocks open() until a writer comes: each of these hung for ever before.
FIFO_CASES = {
    "journal-create": ("journal", ["item", "create", "Item1"]),
    "journal-events": ("journal", ["events"]),
    "journal-verify": ("journal", ["journal", "verify"]),
    "journal-sync": ("journal", ["sync"]),
    "projection-list": ("projection", ["item", "list"]),
    "projection-sync": ("projection", ["sync"]),
}


@pytest.mark.parametrize("case", list(FIFO_CASES))
def test_a_fifo_given_as_a_store_file_is_refused_at_once(
    tmp_path: Path, cqrs_exe: str, case: str
) -> None:
    which, argv = FIFO_CASES[case]
    home = tmp_path / "home"
    home.mkdir()
    if which == "projection":
        # A journal with an event, so that reads and syncs reach the projection.
        assert run_cqrs(cqrs_exe, "item", "create", "Item0", env=child_env(home)).returncode == 0
    fifo = home / f"{which}.db"
    os.mkfifo(fifo)
    result = run_cqrs(cqrs_exe, *argv, env=child_env(home), timeout=20)
    assert result.returncode == 7
    line = one_error_line(result.stderr)
    assert "named pipe (FIFO)" in line and str(fifo) in line


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["item", "delete", "nope"], 3),
        (["item", "update", "nope", "text"], 3),
        (["item", "create", "Item1", "--expect-version", "2"], 4),
        (["item", "create", "bad\tid"], 2),
    ],
)
def test_a_write_refused_before_anything_was_written_creates_no_journal(
    cli: InProcessCli, store: Path, argv: list[str], code: int
) -> None:
    result = cli(*argv)
    assert result.code == code
    one_error_line(result.err)
    assert not store.exists() or list(store.iterdir()) == []


def test_an_unknown_event_type_is_a_usage_error_naming_the_types(cli: InProcessCli) -> None:
    assert cli("item", "create", "Item1").code == 0
    result = cli("events", "--type", "itemdeleted")
    assert (result.code, result.out) == (2, "")
    line = one_error_line(result.err)
    assert "ItemCreated, ItemUpdated or ItemDeleted" in line and "did you mean ItemDeleted" in line
    assert cli("events", "--type", "ItemDeleted").code == 0


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "2026-13-01"]
)
def test_a_time_outside_the_calendar_is_a_usage_error(cli: InProcessCli, moment: str) -> None:
    assert cli("item", "create", "Item1").code == 0
    result = cli("item", "get", "Item1", "--as-of", moment)
    assert result.code == 2
    assert "invalid time" in one_error_line(result.err)


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "-q"],
        ["status", "-q"],
        ["apply", "-q"],
        ["journal", "verify", "-q"],
        ["journal", "export", "-q"],
        ["journal", "backup", "BACKUP", "-q"],
    ],
)
def test_quiet_is_taken_after_the_command_too(
    cli: InProcessCli, store: Path, argv: list[str]
) -> None:
    assert cli("item", "create", "Item1").code == 0
    argv = [str(store / "backup.db") if a == "BACKUP" else a for a in argv]
    result = cli(*argv, stdin=b'{"op":"create","id":"Item2"}\n')
    assert (result.code, result.err) == (0, "")


def test_an_idempotency_key_is_the_same_key_however_its_accents_were_typed(
    cli: InProcessCli,
) -> None:
    precomposed, decomposed = "caf\u00e9-1", "cafe\u0301-1"
    assert cli("item", "create", "Item1", "--idempotency-key", precomposed).code == 0
    retry = cli("item", "create", "Item1", "--idempotency-key", decomposed)
    assert retry.code == 0 and "already applied" in retry.out
    line = f'{{"op":"create","id":"Item1","key":"{decomposed}"}}\n'.encode()
    batch = cli("apply", "--json", stdin=line)
    assert batch.code == 0 and '"already_applied": true' in batch.out


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (b'{"op":"create","id":"a"}\n{"op":"update","id":"zz","description":"x"}\n', 3),
        (b'{"op":"create","id":"a"}\nnot json\n', 2),
        (b"", 0),
    ],
)
def test_a_batch_that_writes_nothing_on_a_new_store_creates_no_journal(
    cli: InProcessCli, store: Path, lines: bytes, code: int
) -> None:
    assert cli("apply", stdin=lines).code == code
    assert not store.exists() or list(store.iterdir()) == []
    # And a batch that succeeds creates the journal, as before.
    assert cli("apply", stdin=b'{"op":"create","id":"a"}\n').code == 0
    assert cli("sync").code == 0 and cli("item", "get", "a").code == 0


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["item", "create", "X", "--journal", "j.db"], "cqrs item create"),
        (["sync", "--home", "elsewhere"], "cqrs sync"),
        (["item", "list", "--debug"], "cqrs item list"),
    ],
)
def test_a_global_option_after_the_command_says_where_it_goes(
    cli: InProcessCli, store: Path, argv: list[str], where: str
) -> None:
    result = cli(*argv)
    assert (result.code, result.out) == (2, "")
    line = one_error_line(result.err, f"{where}: error: ")
    name = argv[-2] if argv[-1] != "--debug" else "--debug"
    assert f"{name} is an option of cqrs itself: give it before the command" in line
    assert not store.exists() or list(store.iterdir()) == []


def test_a_first_batch_that_loses_the_race_to_create_the_journal_is_busy(store: Path) -> None:
    from cqrs_cli import BusyError, CommandService
    from cqrs_cli.write.ndjson import parse_lines

    def lines() -> Iterator[bytes]:
        yield b'{"op":"create","id":"mine"}\n'
        # Meanwhile another process writes first, creating the journal.
        CommandService(str(store)).create_item("theirs")
        yield b'{"op":"create","id":"mine-too"}\n'

    with pytest.raises(BusyError, match="another process created the journal meanwhile"):
        CommandService(str(store)).apply(parse_lines(lines()))
    # Theirs stands; nothing of the batch went in, and no temporary file is left.
    assert [e[2] for e in event_rows(store / "journal.db")] == ["theirs"]
    assert [p.name for p in store.iterdir() if ".new-" in p.name] == []
