"""`cqrs apply [FILE|-]`: NDJSON batches, all or nothing (or line by line with --each),
as a user sees them: exit codes, stdout, stderr and what ends up in the journal."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from common import (
    SUBPROCESS_TIMEOUT,
    InProcessCli,
    event_rows,
    ndjson,
    one_error_line,
    read_only,
    run_cqrs,
)
from scripting_helpers import journal_content, json_lines

from cqrs_cli.write.command_service import CommandService


@pytest.fixture
def journal(store: Path) -> Path:
    return store / "journal.db"


def batch_file(folder: Path, data: bytes, name: str = "commands.ndjson") -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def stream_of(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """(stream_id, stream_version, event_type) of each event row."""
    return [(row[2], row[3], row[4]) for row in rows]


# --- A valid batch ---------------------------------------------------------------------------


def test_a_file_applies_every_line(cli: InProcessCli, journal: Path, tmp_path: Path) -> None:
    path = batch_file(
        tmp_path,
        ndjson(
            {"op": "create", "id": "Item1", "description": "first"},
            {"op": "create", "id": "Item2"},
            {"op": "update", "id": "Item1", "description": "second", "expect_version": 1},
            {"op": "delete", "id": "Item2"},
            {"op": "create", "id": "Item3", "key": "k3", "correlation_id": "c3"},
        ),
    )
    assert cli("apply", path) == (
        0,
        "",
        "Applied 5 commands: 3 created, 1 deleted, 1 updated (journal position 1 -> 5)\n",
    )
    rows = event_rows(journal)
    assert stream_of(rows) == [
        ("Item1", 1, "ItemCreated"),
        ("Item2", 1, "ItemCreated"),
        ("Item1", 2, "ItemUpdated"),
        ("Item2", 2, "ItemDeleted"),
        ("Item3", 1, "ItemCreated"),
    ]
    assert rows[4][9:11] == ("k3", "c3")  # idempotency_key, correlation_id
    assert gc.isenabled()  # the batch pauses the cyclic collector, and only the batch
    assert cli("item", "list", "--sync") == (0, "Item1\nItem3\n", "")
    assert cli("item", "get", "Item1") == (0, "Item1: second\n", "")


def test_a_line_reads_the_same_however_its_json_is_spelled(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    # Compact lines take a faster decoder than the others: the result must not differ.
    lines = [
        b'{"op":"create","id":"A","description":"op"}\n',  # a value that is a field name
        b'  {"op": "create", "id": "B"}  \n',  # whitespace around the object
        b'{"op":"create","id":"C","description":"tab\\there"}\r\n',  # an escape; CRLF
        b'{"id":"D","op":"create","description":"\\u00e9t\xc3\xa9"}',  # order; no newline
    ]
    assert cli("apply", batch_file(tmp_path, b"".join(lines)))[0] == 0
    assert [(row[2], json.loads(str(row[6]))) for row in event_rows(journal)] == [
        ("A", {"description": "op"}),
        ("B", {"description": ""}),
        ("C", {"description": "tab\there"}),
        ("D", {"description": "\u00e9t\u00e9"}),
    ]


def test_batch_command_fields_are_the_same_for_mypy_and_at_run_time() -> None:
    # BatchCommand is declared twice (a typed NamedTuple for mypy, collections.namedtuple
    # at run time, to keep `typing` out of start-up): the run-time one must have the
    # fields, order and defaults the typed one declares.
    from cqrs_cli.domain.item import CreateItem
    from cqrs_cli.write.ndjson import BatchCommand

    assert BatchCommand._fields == (
        "line",
        "command",
        "expected_version",
        "idempotency_key",
        "correlation_id",
    )
    command = BatchCommand(3, CreateItem("A"))
    assert (command.expected_version, command.idempotency_key, command.correlation_id) == (
        None,
        None,
        None,
    )


def test_json_gives_one_result_object_per_line(cli: InProcessCli, tmp_path: Path) -> None:
    CommandService().create_item("Old", "same")
    path = batch_file(
        tmp_path,
        ndjson(
            {"op": "create", "id": "Item1", "description": "a", "key": "k1"},
            {"op": "update", "id": "Old", "description": "same"},
            {"op": "update", "id": "Item1", "description": "b"},
            {"op": "delete", "id": "Old"},
        ),
    )
    code, out, err = cli("apply", "--json", path)
    assert code == 0
    assert json_lines(out) == [
        {
            "line": 1,
            "ok": True,
            "item_id": "Item1",
            "outcome": "created",
            "version": 1,
            "position": 2,
            "already_applied": False,
        },
        {
            "line": 2,
            "ok": True,
            "item_id": "Old",
            "outcome": "unchanged",
            "version": 1,
            "position": 1,
            "already_applied": False,
        },
        {
            "line": 3,
            "ok": True,
            "item_id": "Item1",
            "outcome": "updated",
            "version": 2,
            "position": 3,
            "already_applied": False,
        },
        {
            "line": 4,
            "ok": True,
            "item_id": "Old",
            "outcome": "deleted",
            "version": 2,
            "position": 4,
            "already_applied": False,
        },
    ]
    assert err == (
        "Applied 4 commands: 1 created, 1 deleted, 1 unchanged, 1 updated "
        "(journal position 2 -> 4)\n"
    )


def test_the_summary_counts_in_words(cli: InProcessCli, tmp_path: Path) -> None:
    one = batch_file(tmp_path, ndjson({"op": "create", "id": "A"}), "one.ndjson")
    assert cli("apply", one) == (0, "", "Applied 1 command: 1 created (journal position 1 -> 1)\n")
    empty = batch_file(tmp_path, b"", "empty.ndjson")
    assert cli("apply", empty) == (0, "", "Applied 0 commands: nothing to do\n")
    quiet = batch_file(tmp_path, ndjson({"op": "create", "id": "B"}), "quiet.ndjson")
    assert cli("-q", "apply", quiet) == (0, "", "")
    code, out, err = cli("-q", "apply", one)  # -q silences the summary, not the error
    assert (code, out) == (4, "")
    assert (
        one_error_line(err) == "cqrs: error: line 1: item 'A' already exists; nothing was written\n"
    )


def test_blank_lines_are_skipped_and_still_counted(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    data = (
        b"\n"
        b'{"op": "create", "id": "A"}\r\n'
        b"   \t \n"
        b"\r\n"
        b'{"op": "create", "id": "B"}'  # no newline at the end of the file
    )
    code, out, err = cli("apply", "--json", batch_file(tmp_path, data))
    assert code == 0, err
    assert [(r["line"], r["item_id"]) for r in json_lines(out)] == [(2, "A"), (5, "B")]
    assert stream_of(event_rows(journal)) == [("A", 1, "ItemCreated"), ("B", 1, "ItemCreated")]


def test_ids_are_normalised_as_with_single_commands(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    decomposed, composed = "Cafe\u0301", "Caf\u00e9"
    path = batch_file(
        tmp_path,
        ndjson(
            {"op": "create", "id": decomposed, "description": "one"},
            {"op": "update", "id": composed, "description": "two", "expect_version": 1},
        ),
    )
    code, out, _ = cli("apply", "--json", path)
    assert code == 0
    assert [(r["item_id"], r["version"]) for r in json_lines(out)] == [
        (composed, 1),
        (composed, 2),
    ]
    assert {row[2] for row in event_rows(journal)} == {composed}
    assert cli("item", "get", decomposed, "--sync") == (0, f"{composed}: two\n", "")
    # And the same item a single command names in the other form.
    assert cli("item", "update", decomposed, "three").code == 0
    assert [row[3] for row in event_rows(journal)] == [1, 2, 3]


# --- Where the commands come from --------------------------------------------------------------


@pytest.mark.parametrize("argv", [["apply", "-"], ["apply"]], ids=["dash", "default"])
def test_stdin_is_read_for_dash_and_by_default(
    cli: InProcessCli, journal: Path, argv: list[str]
) -> None:
    code, out, err = cli(*argv, stdin=ndjson({"op": "create", "id": "A"}))
    assert (code, out) == (0, "")
    assert err.startswith("Applied 1 command")
    assert stream_of(event_rows(journal)) == [("A", 1, "ItemCreated")]


def test_commands_piped_from_another_process(cqrs_exe: str, journal: Path) -> None:
    stdin = ndjson(*({"op": "create", "id": f"item-{n}"} for n in range(3)))
    result = run_cqrs(cqrs_exe, "apply", "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert [r["item_id"] for r in json_lines(result.stdout.decode())] == [
        "item-0",
        "item-1",
        "item-2",
    ]
    assert result.stderr == b"Applied 3 commands: 3 created (journal position 1 -> 3)\n"


def test_stdin_a_terminal_is_refused_with_a_hint(cqrs_exe: str, journal: Path) -> None:
    try:
        primary, secondary = os.openpty()
    except OSError:
        pytest.skip("no pseudo-terminal available")
    try:
        result = subprocess.run(
            [cqrs_exe, "apply"],
            stdin=secondary,
            capture_output=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "stdin is a terminal" in line and "cqrs apply < " in line
    assert result.stdout == b""
    assert not journal.exists()


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_an_unreadable_file_is_exit_2(
    cli: InProcessCli, journal: Path, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "nothing-here.ndjson"
    if kind == "directory":
        path.mkdir()
    code, out, err = cli("apply", str(path))
    assert (code, out) == (2, "")
    assert one_error_line(err).startswith(f"cqrs: error: {path}: cannot read")
    assert not journal.exists()


# --- All or nothing ------------------------------------------------------------------------------

# The batch's first two lines are valid; its third is one of these. Each: the line, the
# exit code, and words the error must contain.
DEEP = b"[" * 100_000
BAD_LINES: dict[str, tuple[bytes, int, str]] = {
    "invalid-json": (b'{"op": "create", "id": "X"', 2, "invalid JSON"),
    "trailing-garbage": (b'{"op": "create", "id": "X"} x', 2, "invalid JSON"),
    "compact-trailing-garbage": (b'{"op":"create","id":"X"}x', 2, "invalid JSON"),
    "compact-two-objects": (b'{"op":"create","id":"X"}{"op":"create","id":"Y"}', 2,
                            "invalid JSON"),
    "field-given-twice": (b'{"op":"delete","id":"Seed","expect_version":2,"expect_version":7}',
                          2, "'expect_version' is given twice"),
    "field-given-twice-escaped": (b'{"op":"delete","id":"Seed","expect_version":2,'
                                  b'"\\u0065xpect_version":7}', 2, "given twice"),
    "nan": (b'{"op": "create", "id": "X", "expect_version": NaN}', 2, "NaN"),
    "infinity": (b'{"op": "create", "id": "X", "expect_version": Infinity}', 2, "Infinity"),
    "minus-infinity": (b'{"op": "delete", "id": "Seed", "expect_version": -Infinity}', 2, "Inf"),
    "nan-description": (b'{"op": "create", "id": "X", "description": NaN}', 2, "NaN"),
    "id-number": (b'{"op": "create", "id": 5}', 2, "'id' must be a string"),
    "id-list": (b'{"op": "create", "id": ["X"]}', 2, "'id' must be a string"),
    "missing-id": (b'{"op": "create", "description": "x"}', 2, "missing field 'id'"),
    "null-id": (b'{"op": "create", "id": null}', 2, "missing field 'id'"),
    "empty-id": (b'{"op": "create", "id": ""}', 2, "empty"),
    "version-string": (b'{"op": "update", "id": "Seed", "description": "x", '
                       b'"expect_version": "1"}', 2, "expect_version"),
    "version-true": (b'{"op": "update", "id": "Seed", "description": "x", '
                     b'"expect_version": true}', 2, "expect_version"),
    "version-float": (b'{"op": "update", "id": "Seed", "description": "x", '
                      b'"expect_version": 1.0}', 2, "expect_version"),
    "version-negative": (b'{"op": "create", "id": "X", "expect_version": -1}', 2, "0 or more"),
    "version-huge": (b'{"op": "create", "id": "X", "expect_version": 9223372036854775808}',
                     2, "expect_version"),
    "description-number": (b'{"op": "create", "id": "X", "description": 5}', 2, "description"),
    "key-number": (b'{"op": "create", "id": "X", "key": 1}', 2, "'key' must be a string"),
    "key-empty": (b'{"op": "create", "id": "X", "key": ""}', 2, "idempotency key"),
    "unknown-op": (b'{"op": "upsert", "id": "X"}', 2, "'op' must be create, update or delete"),
    "missing-op": (b'{"id": "X"}', 2, "'op' must be"),
    "unknown-field": (b'{"op": "create", "id": "X", "descripton": "typo"}', 2,
                      "unknown field 'descripton'"),
    "delete-with-description": (b'{"op": "delete", "id": "Seed", "description": "x"}', 2,
                                "a delete takes no description"),
    "update-without-description": (b'{"op": "update", "id": "Seed"}', 2,
                                   "missing field 'description'"),
    "array": (b'[{"op": "create", "id": "X"}]', 2, "expected a JSON object"),
    "string": (b'"create X"', 2, "expected a JSON object"),
    "null": (b"null", 2, "expected a JSON object"),
    "invalid-utf8": (b'{"op": "create", "id": "X\xff"}', 2, "not valid UTF-8"),
    "overlong-utf8": (b'{"op": "create", "id": "\xc0\xaf"}', 2, "not valid UTF-8"),
    "lone-surrogate": (b'{"op": "create", "id": "X\\udc80"}', 2, "not valid UTF-8"),
    "escape-in-id": (b'{"op": "create", "id": "\\u001b[2J"}', 2, "control or format"),
    "nul-in-description": (b'{"op": "create", "id": "X", "description": "a\\u0000"}', 2, "NUL"),
    "deeply-nested": (DEEP, 2, "nested too deeply"),
    "deeply-nested-field": (b'{"op": "create", "id": "X", "description": ' + DEEP, 2,
                            "nested too deeply"),
    "deeply-nested-object": (b'{"a":' * 100_000, 2, "nested too deeply"),
    "create-existing": (b'{"op": "create", "id": "Seed"}', 4, "item 'Seed' already exists"),
    "create-made-earlier-in-the-batch": (b'{"op": "create", "id": "New1"}', 4,
                                         "item 'New1' already exists"),
    "update-missing": (b'{"op": "update", "id": "Ghost", "description": "x"}', 3,
                       "item 'Ghost' does not exist"),
    "delete-missing": (b'{"op": "delete", "id": "Ghost"}', 3, "item 'Ghost' does not exist"),
    "wrong-expect-version": (b'{"op": "delete", "id": "Seed", "expect_version": 1}', 4,
                             "item 'Seed' is at version 2, not the expected version 1"),
    "expect-version-after-batch-write": (
        b'{"op": "update", "id": "New1", "description": "x", "expect_version": 0}', 4,
        "item 'New1' is at version 1, not the expected version 0"),
    "key-of-the-batch-reused": (b'{"op": "create", "id": "Other", "key": "k-new1"}', 4,
                                "idempotency key 'k-new1' was already used"),
    "key-of-the-journal-reused": (b'{"op": "create", "id": "Other", "key": "k-seed"}', 4,
                                  "idempotency key 'k-seed' was already used"),
}  # fmt: skip


def seeded_store() -> None:
    """A journal with Seed at version 1, created with key k-seed."""
    CommandService().create_item("Seed", "seed", idempotency_key="k-seed")


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_a_bad_line_writes_nothing_at_all(
    cli: InProcessCli, journal: Path, tmp_path: Path, name: str
) -> None:
    bad, exit_code, words = BAD_LINES[name]
    seeded_store()
    before = journal_content(journal)
    data = (
        ndjson(
            {"op": "create", "id": "New1", "description": "new", "key": "k-new1"},
            {"op": "update", "id": "Seed", "description": "changed"},
        )
        + bad
        + b"\n"
        + ndjson({"op": "create", "id": "After"})
    )
    code, out, err = cli("apply", "--json", batch_file(tmp_path, data))
    assert code == exit_code
    assert out == ""  # not even the results of the lines that were fine
    line = one_error_line(err, "cqrs: error: line 3: ")
    assert words in line
    assert line.endswith("; nothing was written\n")
    assert journal_content(journal) == before
    assert gc.isenabled()  # paused during the batch only, failed or not


@pytest.mark.parametrize("failure", ["parse", "domain"])
def test_a_bad_line_after_several_rounds_writes_nothing(
    cli: InProcessCli, journal: Path, tmp_path: Path, failure: str
) -> None:
    # Rounds of 1,000 lines are inserted as the batch goes: the last line's failure
    # must still take back every earlier round.
    seeded_store()
    before = journal_content(journal)
    good = ndjson(*({"op": "create", "id": f"item-{n:05d}"} for n in range(2500)))
    bad = b"{not json}\n" if failure == "parse" else ndjson({"op": "create", "id": "item-00007"})
    code, out, err = cli("apply", batch_file(tmp_path, good + bad))
    assert (code, out) == ((2, "") if failure == "parse" else (4, ""))
    one_error_line(err, "cqrs: error: line 2501: ")
    assert journal_content(journal) == before


def test_a_bad_line_in_a_new_store_leaves_no_events(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    data = ndjson({"op": "create", "id": "A"}, {"op": "update", "id": "B", "description": "x"})
    code, out, err = cli("apply", batch_file(tmp_path, data))
    assert (code, out) == (3, "")
    one_error_line(err, "cqrs: error: line 2: ")
    assert event_rows(journal) == []
    assert cli("item", "list", "--sync") == (0, "", "")


def test_a_batch_from_a_process_that_fails_prints_one_line(cqrs_exe: str, journal: Path) -> None:
    seeded_store()
    before = journal_content(journal)
    stdin = ndjson({"op": "create", "id": "A"}) + b'{"op": "create", "id": "B", "x": 1}\n'
    result = run_cqrs(cqrs_exe, "apply", "--json", stdin=stdin)
    assert result.returncode == 2
    assert result.stdout == b""
    assert one_error_line(result.stderr) == (
        "cqrs: error: line 2: unknown field 'x'; nothing was written\n"
    )
    assert journal_content(journal) == before


# --- Description size --------------------------------------------------------------------------


def create_with_description(size: int) -> bytes:
    return ndjson({"op": "create", "id": "Big", "description": "d" * size})


def test_a_description_over_the_limit_is_refused(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    seeded_store()
    before = journal_content(journal)
    path = batch_file(tmp_path, create_with_description(2_000_000))
    code, out, err = cli("apply", path)
    assert (code, out) == (2, "")
    assert "more than the limit of 1048576 bytes" in one_error_line(err, "cqrs: error: line 1: ")
    assert journal_content(journal) == before
    code, _, err = cli("apply", "--each", path)
    assert code == 2
    assert "line 1: invalid description: 2000000 bytes" in err
    assert journal_content(journal) == before


def test_the_description_limit_is_one_mebibyte(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    over = batch_file(tmp_path, create_with_description(2**20 + 1), "over.ndjson")
    assert cli("apply", over).code == 2
    exact = batch_file(tmp_path, create_with_description(2**20), "exact.ndjson")
    assert cli("apply", exact).code == 0
    assert len(json.loads(str(event_rows(journal)[0][6]))["description"]) == 2**20


# --- --each ------------------------------------------------------------------------------------

EACH_BATCH = (
    ndjson(
        {"op": "create", "id": "A"},
        {"op": "create", "id": "A"},
    )
    + b'{"op": "create", "id": "B", "expect_version": "0"}\n'
    + ndjson(
        {"op": "update", "id": "Ghost", "description": "x"},
        {"op": "create", "id": "B"},
        {"op": "delete", "id": "A", "expect_version": 1},
    )
)


def test_each_reports_every_line_and_commits_the_good_ones(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    code, out, err = cli("apply", "--each", "--json", batch_file(tmp_path, EACH_BATCH))
    assert code == 4  # the first failure's
    results = json_lines(out)
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5, 6]
    assert [r["ok"] for r in results] == [True, False, False, False, True, True]
    failures = [r for r in results if not r["ok"]]
    assert [set(r) for r in failures] == [{"line", "ok", "error", "exit_code"}] * 3
    assert [(r["exit_code"], r["error"]) for r in failures] == [
        (4, "line 2: item 'A' already exists"),
        (2, "line 3: 'expect_version' must be an integer, 0 or more"),
        (3, "line 4: item 'Ghost' does not exist"),
    ]
    assert results[4]["item_id"] == "B" and results[5]["outcome"] == "deleted"
    assert err == "Applied 3 commands: 2 created, 1 deleted (journal position 1 -> 3); 3 failed\n"
    assert stream_of(event_rows(journal)) == [
        ("A", 1, "ItemCreated"),
        ("B", 1, "ItemCreated"),
        ("A", 2, "ItemDeleted"),
    ]


def test_each_without_json_reports_failures_on_stderr(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    code, out, err = cli("apply", "--each", batch_file(tmp_path, EACH_BATCH))
    assert (code, out) == (4, "")
    assert err.splitlines() == [
        "cqrs: error: line 2: item 'A' already exists",
        "cqrs: error: line 3: 'expect_version' must be an integer, 0 or more",
        "cqrs: error: line 4: item 'Ghost' does not exist",
        "Applied 3 commands: 2 created, 1 deleted (journal position 1 -> 3); 3 failed",
    ]
    assert len(event_rows(journal)) == 3


def test_each_exit_code_is_the_first_failures(cli: InProcessCli, tmp_path: Path) -> None:
    data = ndjson(
        {"op": "delete", "id": "Ghost"},
        {"op": "create", "id": "A"},
        {"op": "create", "id": "A"},
    )
    assert cli("apply", "--each", batch_file(tmp_path, data)).code == 3
    good = batch_file(tmp_path, ndjson({"op": "create", "id": "B"}), "good.ndjson")
    assert cli("apply", "--each", good) == (
        0,
        "",
        "Applied 1 command: 1 created (journal position 2 -> 2)\n",
    )


# --- Idempotency keys ------------------------------------------------------------------------

KEYED = ndjson(
    {"op": "create", "id": "A", "description": "a", "key": "import-1"},
    {"op": "create", "id": "B", "key": "import-2"},
    {"op": "update", "id": "A", "description": "a2", "key": "import-3"},
    {"op": "delete", "id": "B", "key": "import-4"},
)


@pytest.mark.parametrize("mode", [[], ["--each"]], ids=["batch", "each"])
def test_a_keyed_file_applied_twice_appends_nothing_the_second_time(
    cli: InProcessCli, journal: Path, tmp_path: Path, mode: list[str]
) -> None:
    path = batch_file(tmp_path, KEYED)
    code, first, _ = cli("apply", *mode, "--json", path)
    assert code == 0
    after_first = journal_content(journal)
    code, second, err = cli("apply", *mode, "--json", path)
    assert code == 0
    assert journal_content(journal) == after_first
    assert [r["already_applied"] for r in json_lines(second)] == [True] * 4
    strip = [{k: v for k, v in r.items() if k != "already_applied"} for r in json_lines(first)]
    assert [
        {k: v for k, v in r.items() if k != "already_applied"} for r in json_lines(second)
    ] == strip
    assert err == "Applied 4 commands: 4 already applied\n"


def test_a_key_used_twice_in_one_file_applies_once(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    retried = {"op": "create", "id": "A", "description": "a", "key": "k"}
    filler = [{"op": "create", "id": f"item-{n:04d}"} for n in range(1500)]
    # Once in the same round of 1,000 lines, once in a later round.
    data = ndjson(retried, retried, *filler, retried)
    code, out, err = cli("apply", "--json", batch_file(tmp_path, data))
    assert code == 0, err
    results = json_lines(out)
    first, again, later = results[0], results[1], results[-1]
    assert first["already_applied"] is False
    for result in (again, later):
        assert result["already_applied"] is True
        assert (result["item_id"], result["outcome"], result["version"], result["position"]) == (
            "A",
            "created",
            1,
            1,
        )
    assert [row[2] for row in event_rows(journal)].count("A") == 1
    assert err == (
        "Applied 1503 commands: 1501 created, 2 already applied (journal position 1 -> 1501)\n"
    )


# --- --sync ------------------------------------------------------------------------------------


def test_sync_then_reads_without_the_stale_note(cli: InProcessCli, tmp_path: Path) -> None:
    first = batch_file(tmp_path, ndjson({"op": "create", "id": "A"}), "first.ndjson")
    assert cli("apply", "--sync", first).code == 0
    assert cli("item", "list") == (0, "A\n", "")
    second = batch_file(tmp_path, ndjson({"op": "create", "id": "B"}), "second.ndjson")
    assert cli("apply", "--sync", second).code == 0
    assert cli("item", "list") == (0, "A\nB\n", "")
    third = batch_file(tmp_path, ndjson({"op": "create", "id": "C"}), "third.ndjson")
    assert cli("apply", third).code == 0
    code, out, err = cli("item", "list")
    assert (code, out) == (0, "A\nB\n")
    assert "the projection is behind the journal (position 2 of 3)" in err


def test_each_with_sync_syncs_the_lines_that_were_committed(
    cli: InProcessCli, tmp_path: Path
) -> None:
    data = ndjson({"op": "create", "id": "A"}, {"op": "delete", "id": "Ghost"})
    assert cli("apply", "--each", "--sync", batch_file(tmp_path, data)).code == 3
    assert cli("item", "list") == (0, "A\n", "")


def test_a_field_given_twice_is_refused(cli: InProcessCli, journal: Path, tmp_path: Path) -> None:
    seeded_store()
    data = b'{"op": "delete", "id": "Seed", "expect_version": 7, "expect_version": null}\n'
    code, _, err = cli("apply", batch_file(tmp_path, data))
    assert code == 2, err
    assert len(event_rows(journal)) == 1


# --- Memory stays bounded ----------------------------------------------------------------------

WRITER = """
import sys
write = sys.stdout.write
for n in range(int(sys.argv[1])):
    write('{"op": "create", "id": "item-%07d", "description": "description of item %d"}\\n'
          % (n, n))
"""
RSS_LIMIT_KB = 150 * 1024


def apply_stream(exe: str, count: int, folder: Path, timeout: float) -> tuple[int, int, str]:
    """Pipe `count` generated create lines from a writer process into `cqrs apply --json`;
    (exit code, peak RSS of the cqrs process in KiB, stderr)."""
    out_path, err_path = folder / "apply.out", folder / "apply.err"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(count)], stdout=subprocess.PIPE)
    assert writer.stdout is not None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        applier = subprocess.Popen(
            [exe, "apply", "--json"], stdin=writer.stdout, stdout=out, stderr=err
        )
    writer.stdout.close()  # the applier holds the pipe now
    deadline = time.monotonic() + timeout
    try:
        while True:
            # wait4 gives this child's own rusage: RUSAGE_CHILDREN would also count
            # every earlier child of this test process.
            pid, status, usage = os.wait4(applier.pid, os.WNOHANG)
            if pid:
                break
            assert time.monotonic() < deadline, f"cqrs apply still running after {timeout} s"
            time.sleep(0.1)
    finally:
        if not pid:
            applier.kill()
            applier.wait()
            writer.kill()
        writer.wait(SUBPROCESS_TIMEOUT)
    applier.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, "rb") as results:
        assert sum(1 for _ in results) == count
    return applier.returncode, usage.ru_maxrss, err_path.read_text()


def check_bounded_memory(exe: str, journal: Path, folder: Path, count: int, timeout: float) -> None:
    code, peak_kb, err = apply_stream(exe, count, folder, timeout)
    assert code == 0, err
    assert err == f"Applied {count} commands: {count} created (journal position 1 -> {count})\n"
    assert peak_kb < RSS_LIMIT_KB, f"peak RSS {peak_kb // 1024} MB"
    conn = read_only(journal)
    try:
        last = conn.execute("SELECT COUNT(*), MAX(position), MAX(stream_id) FROM events").fetchone()
    finally:
        conn.close()
    assert last == (count, count, f"item-{count - 1:07d}")


def test_a_stream_of_50000_lines_is_applied_in_bounded_memory(
    cqrs_exe: str, journal: Path, tmp_path: Path
) -> None:
    check_bounded_memory(cqrs_exe, journal, tmp_path, 50_000, timeout=300)


@pytest.mark.slow
def test_a_stream_of_a_million_lines_is_applied_in_bounded_memory(
    cqrs_exe: str, journal: Path, tmp_path: Path
) -> None:
    check_bounded_memory(cqrs_exe, journal, tmp_path, 1_000_000, timeout=1800)
