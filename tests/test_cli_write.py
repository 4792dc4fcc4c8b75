"""`cqrs item create|update|delete` as a user sees them: exact output, exit codes, stdin,
where the journal is, and what only a real process shows (tracebacks, broken pipes)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from common import InProcessCli, Output, one_error_line, run_cqrs

import cqrs_cli
from cqrs_cli.cli.main import run
from cqrs_cli.cli.state import state
from cqrs_cli.journal.sqlite_journal import SqliteJournal
from cqrs_cli.write.command_service import CommandService


def stream_ids(journal_path: Path) -> list[str]:
    journal = SqliteJournal.open(str(journal_path), create=False)
    try:
        return [event.stream_id for event in journal.read_all()]
    finally:
        journal.close()


@pytest.fixture
def held_lock(store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A journal with Item1 in it, write-locked by another connection; busy timeout 0.2 s."""
    CommandService(store).create_item("Item1")
    monkeypatch.setenv("CQRS_BUSY_TIMEOUT", "0.2")
    holder = sqlite3.connect(str(store / "journal.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield store / "journal.db"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# --- Exact output ----------------------------------------------------------------------------


def test_the_seed_scenario_prints_one_line_per_command(cli: InProcessCli) -> None:
    assert cli("item", "create", "Item1") == (0, "Item created: Item1\n", "Journal position: 1\n")
    assert cli("item", "update", "Item1", "Updated Description") == (
        0,
        "Item updated: Item1\n",
        "Journal position: 2\n",
    )
    assert cli("item", "update", "Item1", "Updated Description") == (
        0,
        "Item unchanged: Item1\n",
        "The description is already that: nothing appended.\nJournal position: 2\n",
    )
    assert cli("item", "delete", "Item1") == (0, "Item deleted: Item1\n", "Journal position: 3\n")
    assert cli("item", "create", "Item1", "-d", "again") == (
        0,
        "Item created: Item1\n",
        "Journal position: 4\n",
    )


def test_quiet_silences_the_notes_but_not_the_data_or_errors(cli: InProcessCli) -> None:
    assert cli("-q", "item", "create", "Item1") == (0, "Item created: Item1\n", "")
    assert cli("--quiet", "item", "update", "Item1", "") == (0, "Item unchanged: Item1\n", "")
    code, out, err = cli("-q", "item", "create", "Item1")
    assert (code, out) == (4, "")
    assert err == "cqrs: error: item 'Item1' already exists\n"


JSON_KEYS = {
    "item_id",
    "outcome",
    "version",
    "position",
    "appended",
    "already_applied",
    "dry_run",
    "events",
}
EVENT_KEYS = {
    "position",
    "event_id",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "data",
    "recorded_at",
    "metadata",
    "prev_hash",
    "hash",
}


def test_json_output_is_one_object_on_one_line(cli: InProcessCli) -> None:
    code, out, err = cli(
        "item", "create", "Item1", "-d", "First", "--json", "--correlation-id", "c"
    )
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    document = json.loads(out)
    assert set(document) == JSON_KEYS
    assert {k: v for k, v in document.items() if k != "events"} == {
        "item_id": "Item1",
        "outcome": "created",
        "version": 1,
        "position": 1,
        "appended": 1,
        "already_applied": False,
        "dry_run": False,
    }
    (event,) = document["events"]
    assert set(event) == EVENT_KEYS
    assert event["data"] == {"description": "First"}
    assert (event["stream_id"], event["stream_version"], event["position"]) == ("Item1", 1, 1)
    assert event["event_type"] == "ItemCreated"
    assert event["metadata"]["correlation_id"] == "c"
    assert event["metadata"]["idempotency_key"] is None


def test_json_output_of_an_unchanged_update(cli: InProcessCli) -> None:
    cli("item", "create", "Item1", "-d", "same")
    code, out, _ = cli("-q", "item", "update", "Item1", "same", "--json")
    document = json.loads(out)
    assert code == 0
    assert (document["outcome"], document["appended"], document["events"]) == ("unchanged", 0, [])
    assert (document["version"], document["position"]) == (1, 1)


def test_json_output_keeps_hostile_text_exact_but_escaped(cli: InProcessCli) -> None:
    text = "\x1b[2J\x1b]8;;http://evil/\x07link\x1b]8;;\x07 \u202e \x9b31m\nend"
    code, out, _ = cli("item", "create", "Item1", "-d", text, "--json")
    assert code == 0
    for raw in ("\x1b", "\x07", "\u202e", "\x9b"):
        assert raw not in out
    assert json.loads(out)["events"][0]["data"]["description"] == text


# --- Exit codes --------------------------------------------------------------------------------


def create_item1(store: Path) -> None:
    CommandService(store).create_item("Item1")


def text_file_journal(store: Path) -> None:
    store.mkdir(parents=True, exist_ok=True)
    (store / "notes.txt").write_text("hello\n")


@pytest.mark.parametrize(
    ("setup", "argv", "code", "stderr"),
    [
        (None, ["item", "create", "Item1"], 0, r"Journal position: 1"),
        (None, ["item", "create", ""], 2, r"cqrs: error: invalid item id: it is empty"),
        (None, ["item", "update", "Item1", "x"], 3, r"cqrs: error: item 'Item1' does not exist"),
        (create_item1, ["item", "create", "Item1"], 4, r"cqrs: error: item 'Item1' already exists"),
        (
            text_file_journal,
            ["--journal", "{store}/notes.txt", "item", "create", "Item1"],
            7,
            r"cqrs: error: .*/notes\.txt: not a cqrs journal \(not an SQLite database\)",
        ),
    ],
    ids=["ok", "usage", "not-found", "conflict", "storage"],
)
def test_each_exit_code_comes_with_one_line_on_stderr(
    cqrs_exe: str,
    store: Path,
    setup: Callable[[Path], None] | None,
    argv: list[str],
    code: int,
    stderr: str,
) -> None:
    if setup is not None:
        setup(store)
    result = run_cqrs(cqrs_exe, *[arg.replace("{store}", str(store)) for arg in argv])
    assert result.returncode == code
    text = one_error_line(result.stderr, starts="")
    assert re.fullmatch(stderr, text.rstrip("\n")), text
    if code == 7:
        assert (store / "notes.txt").read_text() == "hello\n"


def test_a_journal_locked_too_long_is_exit_6_and_writes_nothing(
    cqrs_exe: str, held_lock: Path
) -> None:
    result = run_cqrs(cqrs_exe, "item", "update", "Item1", "new")
    assert result.returncode == 6
    text = one_error_line(result.stderr)
    assert "locked by another process" in text and "retry" in text
    assert result.stdout == b""
    assert stream_ids(held_lock) == ["Item1"]


def test_a_journal_locked_too_long_is_exit_6_in_process(cli: InProcessCli, held_lock: Path) -> None:
    code, out, err = cli("item", "create", "Item2")
    assert (code, out) == (6, "")
    one_error_line(err)
    assert stream_ids(held_lock) == ["Item1"]  # readers still see the journal: no Item2


def test_invalid_utf8_on_argv_is_a_usage_error(cqrs_exe: str, store: Path) -> None:
    result = run_cqrs(cqrs_exe, "item", "create", b"Item\xff1")
    assert result.returncode == 2
    text = one_error_line(result.stderr)
    assert "not valid UTF-8" in text
    assert not (store / "journal.db").exists()


# --- Usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["item", "create"],
        ["item", "create", "Item1", "--expect-version", "abc"],
        ["item", "create", "Item1", "--no-such-option"],
        ["item", "create", "Item1", "extra"],
        ["item", "create", "Item1", "-d"],
    ],
    ids=["missing-id", "bad-int", "unknown-option", "extra-argument", "missing-value"],
)
def test_usage_errors_are_one_line_and_exit_2(
    cli: InProcessCli, store: Path, argv: list[str]
) -> None:
    code, out, err = cli(*argv)
    assert (code, out) == (2, "")
    text = one_error_line(err, starts="cqrs item create: error: ")
    assert text.endswith("(see 'cqrs item create --help')\n")
    assert not (store / "journal.db").exists()


def test_a_missing_id_names_the_argument(cli: InProcessCli) -> None:
    assert cli("item", "create").err == (
        "cqrs item create: error: Missing argument 'ID'. (see 'cqrs item create --help')\n"
    )


@pytest.mark.parametrize("argv", [[], ["item"]], ids=["cqrs", "cqrs-item"])
def test_no_arguments_shows_the_help_once_and_exits_2(cli: InProcessCli, argv: list[str]) -> None:
    code, out, _ = cli(*argv)
    assert code == 2
    assert out.count("Usage:") == 1


# --- Options -----------------------------------------------------------------------------------


def test_expect_version_mismatch_is_exit_4(cli: InProcessCli) -> None:
    cli("item", "create", "Item1")
    assert cli("item", "delete", "Item1", "--expect-version", "5") == (
        4,
        "",
        "cqrs: error: item 'Item1' is at version 1, not the expected version 5\n",
    )
    assert cli("item", "delete", "Item1", "--expect-version=1").code == 0


def test_an_idempotency_key_retry_appends_nothing_and_exits_0(
    cli: InProcessCli, store: Path
) -> None:
    first = cli("item", "create", "Item1", "--idempotency-key", "k-1")
    retry = cli("item", "create", "Item1", "--idempotency-key", "k-1")
    assert first == (0, "Item created: Item1\n", "Journal position: 1\n")
    assert retry == (
        0,
        "Item created: Item1 (already applied, nothing appended)\n",
        "Journal position: 1\n",
    )
    document = json.loads(cli("item", "create", "Item1", "--idempotency-key", "k-1", "--json").out)
    assert (document["already_applied"], document["appended"]) == (True, 0)
    assert stream_ids(store / "journal.db") == ["Item1"]


def test_dry_run_shows_the_events_and_writes_nothing(cli: InProcessCli, store: Path) -> None:
    assert cli("item", "create", "Item1", "-d", "a", "--dry-run") == (
        0,
        'Would append ItemCreated to Item1 (version 1): {"description":"a"}\n',
        "Dry run: nothing was written.\n",
    )
    assert not (store / "journal.db").exists()
    cli("item", "create", "Item1", "-d", "a")
    code, out, _ = cli("-q", "item", "delete", "Item1", "--dry-run", "--json")
    document = json.loads(out)
    assert code == 0
    assert (document["dry_run"], document["appended"], document["version"]) == (True, 0, 2)
    assert stream_ids(store / "journal.db") == ["Item1"]


def test_journal_option_beats_cqrs_journal_beats_cqrs_home(
    cli: InProcessCli, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag, env = tmp_path / "flag.db", tmp_path / "env.db"
    monkeypatch.setenv("CQRS_JOURNAL", str(env))
    assert cli("--journal", str(flag), "item", "create", "A").code == 0
    assert cli("item", "create", "B").code == 0
    monkeypatch.delenv("CQRS_JOURNAL")
    assert cli("item", "create", "C").code == 0
    assert cli("--home", str(tmp_path / "other-home"), "item", "create", "D").code == 0
    assert stream_ids(flag) == ["A"]
    assert stream_ids(env) == ["B"]
    assert stream_ids(store / "journal.db") == ["C"]
    assert stream_ids(tmp_path / "other-home" / "journal.db") == ["D"]


# --- The description from stdin ----------------------------------------------------------------


def description_of(output: Output) -> str:
    assert output.code == 0, output
    description = json.loads(output.out)["events"][0]["data"]["description"]
    assert isinstance(description, str)
    return description


@pytest.mark.parametrize(
    ("piped", "description"),
    [
        (b"hello\n", "hello"),
        (b"hello\n\n", "hello\n"),
        (b"hello", "hello"),
        (b"windows\r\n", "windows"),
        (b"two\nlines\n", "two\nlines"),
        (b"", ""),
        ("caf\u00e9 \x1b[31m\n".encode(), "caf\u00e9 \x1b[31m"),
    ],
    ids=repr,
)
def test_dash_reads_the_description_from_stdin_without_one_trailing_newline(
    cli: InProcessCli, piped: bytes, description: str
) -> None:
    create = cli("item", "create", "Item1", "-d", "-", "--json", stdin=piped)
    assert description_of(create) == description
    update = cli("item", "update", "Item1", "-", "--json", stdin=piped + b"+")
    assert description_of(update) == piped.decode() + "+"


def test_invalid_utf8_on_stdin_is_a_usage_error(cli: InProcessCli, store: Path) -> None:
    code, out, err = cli("item", "create", "Item1", "-d", "-", stdin=b"ok \xff bad\n")
    assert (code, out) == (2, "")
    assert err == "cqrs: error: invalid description: stdin is not valid UTF-8 (byte 3)\n"
    assert not (store / "journal.db").exists()


def test_stdin_from_a_process_pipe(cqrs_exe: str) -> None:
    result = run_cqrs(cqrs_exe, "item", "create", "Item1", "-d", "-", "--json", stdin=b"piped\n")
    assert result.returncode == 0
    assert json.loads(result.stdout)["events"][0]["data"] == {"description": "piped"}


def test_dash_with_stdin_a_terminal_is_a_usage_error(cqrs_exe: str, store: Path) -> None:
    try:
        primary, secondary = os.openpty()
    except OSError:
        pytest.skip("no pseudo-terminal available")
    try:
        result = subprocess.run(
            [cqrs_exe, "item", "create", "Item1", "-d", "-"],
            stdin=secondary,
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert result.returncode == 2
    assert "stdin is a terminal" in one_error_line(result.stderr)
    assert not (store / "journal.db").exists()


# --- Hostile text never reaches the terminal raw -----------------------------------------------

HOSTILE = {
    "csi": "\x1b[2J",
    "osc8": "x\x1b]8;;https:evil\x07link",
    "c1-csi": "\x9b31m",
    "bidi": "\u202eevil",
    "cr": "a\rb",
    "bell": "bell\x07",
}
TERMINAL_ACTIVE = ("\x1b", "\x07", "\x9b", "\u202e", "\r")
HOSTILE_ARGV = {
    "create": ["item", "create", "{h}"],
    "update": ["item", "update", "{h}", "x"],
    "delete": ["item", "delete", "{h}"],
    "key": ["item", "create", "Item1", "--idempotency-key", "{h}"],
    "extra": ["item", "create", "Item1", "{h}"],
    "option": ["item", "create", "Item1", "--{h}"],
    "int": ["item", "create", "Item1", "--expect-version", "{h}"],
    "journal-path": ["--journal", "{store}/{h}", "item", "create", "Item1"],
}


def hostile_cases() -> list[object]:
    cases: list[object] = []
    for where, argv in HOSTILE_ARGV.items():
        for name, text in HOSTILE.items():
            cases.append(pytest.param(argv, text, id=f"{where}-{name}"))
    return cases


@pytest.mark.parametrize(("argv", "hostile"), hostile_cases())
def test_hostile_text_in_error_messages_is_escaped(
    cli: InProcessCli, store: Path, argv: list[str], hostile: str
) -> None:
    store.mkdir(parents=True, exist_ok=True)
    (store / hostile).write_text("not a journal")
    args = [a.replace("{store}", str(store)).replace("{h}", hostile) for a in argv]
    code, out, err = cli(*args)
    assert code in (2, 7)
    assert out == ""
    one_error_line(err, starts="cqrs")
    for raw in TERMINAL_ACTIVE:
        assert raw not in err


def test_hostile_id_from_a_process_puts_no_escape_on_stderr(cqrs_exe: str) -> None:
    result = run_cqrs(cqrs_exe, "item", "update", "\x1b[2JItem", "x")
    assert result.returncode == 2
    assert b"\x1b" not in result.stderr
    assert b"\\x1b[2JItem" in result.stderr


# --- What only a process shows -----------------------------------------------------------------


def test_version(cli: InProcessCli, cqrs_exe: str) -> None:
    expected = f"cqrs {cqrs_cli.__version__}\n"
    assert cli("--version") == (0, expected, "")
    result = run_cqrs(cqrs_exe, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, expected.encode(), b"")


def test_python_dash_m_runs_the_same_cli(store: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cqrs_cli", "--version"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == f"cqrs {cqrs_cli.__version__}\n".encode()
    created = subprocess.run(
        [sys.executable, "-m", "cqrs_cli", "item", "create", "Item1"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (created.returncode, created.stdout) == (0, b"Item created: Item1\n")


def test_a_reader_that_went_away_gives_no_traceback(cqrs_exe: str, store: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before cqrs writes a byte
    try:
        result = subprocess.run(
            [cqrs_exe, "item", "create", "Item1", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0
    assert result.stderr == b""
    # The write itself happened: only its report had nowhere to go.
    assert stream_ids(store / "journal.db") == ["Item1"]


def test_piping_into_head_gives_no_traceback(cqrs_exe: str) -> None:
    result = subprocess.run(
        f"'{cqrs_exe}' item create Item1 --json | head -c1",
        shell=True,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == b"{"
    assert b"Traceback" not in result.stderr
    assert b"Error" not in result.stderr


def test_run_called_twice_does_not_keep_the_first_calls_options(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("journal", "projection", "home"):
        monkeypatch.setattr(state, name, None)
    monkeypatch.setattr(state, "quiet", False)
    other = tmp_path / "other.db"
    assert run(["-q", "--journal", str(other), "item", "create", "A"]) == 0
    capsys.readouterr()
    assert run(["item", "create", "B"]) == 0
    assert capsys.readouterr().err == "Journal position: 1\n"
    assert stream_ids(other) == ["A"]
