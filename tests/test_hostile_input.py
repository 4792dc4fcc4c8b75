"""Hostile input: terminal escapes, bidi and zero-width characters, rich markup, NUL,
invalid UTF-8, SQL and FTS5 syntax, LIKE wildcards, huge descriptions and out-of-range
numbers, in ids, descriptions, search text and options.

Each is either stored byte for byte (checked in the journal's own rows and through a
`--json` round trip) or refused with exit 2 and one line, writing nothing. Human output
(stdout and stderr, tables on a terminal included) never carries a raw ESC, CR, C1
control, bidi override or zero-width character. Nothing crashes: no exit 1, no traceback.
(Malformed NDJSON for `cqrs apply` is tests/test_apply.py's.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from common import (
    InProcessCli,
    Output,
    child_env,
    event_count,
    event_rows,
    one_error_line,
    run_cqrs,
)
from reliability_helpers import assert_clean_failure, assert_terminal_safe, run_on_terminal

from cqrs_cli import CommandService
from cqrs_cli.domain.validation import MAX_DESCRIPTION_BYTES
from cqrs_cli.paths import StorePaths
from cqrs_cli.sync.runner import sync_projection


def ok(result: Output) -> Output:
    """The command succeeded, and what it showed is safe on a terminal."""
    assert result.code == 0, result
    assert_terminal_safe(result.out)
    assert_terminal_safe(result.err)
    return result


def refused(result: Output, *needles: str) -> str:
    """Exit 2, nothing on stdout, one error line (terminal-safe) holding every needle."""
    assert (result.code, result.out) == (2, ""), result
    line = one_error_line(result.err, starts="cqrs")
    assert_terminal_safe(line)
    for needle in needles:
        assert needle in line, (needle, line)
    return line


OSC8 = "\x1b]8;;http://x\x07a\x1b]8;;\x07"
HOSTILE_TEXT = {
    "csi-clear": "\x1b[2J",
    "osc8-link": OSC8,
    "carriage-return": "visible\rhidden",
    "bidi-override": "abc\u202edef",
    "zero-width-space": "zero\u200bwidth",
    "c1-csi": "\x9b31m red",
    "c1-next-line": "a\x85b",
    "delete": "a\x7fb",  # DEL: ASCII, yet escaped in JSON output like the C1 controls
    "line-separator": "a\u2028b",
    "rich-close": "[/]",
    "rich-bold": "[bold]x",
    "sql": "'; DROP TABLE events; --",
    "fts-syntax": 'NEAR( OR " * AND NOT x:y ^z',
    "like-wildcards": "100% a_b",
    "everything": f"\x1b[2J{OSC8}\r\u202e\u200b[/][bold]x\x9b'; DROP TABLE events; --\"*%_\n\t",
}
# Ids may not hold control or format characters; everything else is an id like any other.
REFUSED_IDS = {
    name: text
    for name, text in HOSTILE_TEXT.items()
    if name
    in {
        "csi-clear",
        "osc8-link",
        "carriage-return",
        "bidi-override",
        "zero-width-space",
        "c1-csi",
        "c1-next-line",
        "delete",
        "line-separator",
        "everything",
    }
}
STORED_IDS = {name: text for name, text in HOSTILE_TEXT.items() if name not in REFUSED_IDS}


def stored_descriptions(journal: Path) -> dict[str, str]:
    """Each item's last description, decoded from the journal's rows themselves."""
    found: dict[str, str] = {}
    for row in event_rows(journal):
        stream_id, data = row[2], row[6]
        assert isinstance(stream_id, str) and isinstance(data, str)
        decoded = json.loads(data)
        if "description" in decoded:
            found[stream_id] = decoded["description"]
    return found


@pytest.mark.parametrize("text", HOSTILE_TEXT.values(), ids=HOSTILE_TEXT.keys())
def test_a_hostile_description_is_stored_exactly_and_shown_safely(
    cli: InProcessCli, store: Path, text: str
) -> None:
    ok(cli("item", "create", "ByArgv", "-d", text))
    ok(cli("item", "create", "ByStdin", "-d", "-", stdin=text.encode() + b"\n"))
    ok(cli("item", "create", "Plain", "-d", "plain"))
    ok(cli("item", "update", "Plain", text, "--idempotency-key", "k1"))
    assert stored_descriptions(store / "journal.db") == {
        "ByArgv": text,
        "ByStdin": text,
        "Plain": text,
    }

    ok(cli("sync"))
    for item_id in ("ByArgv", "ByStdin", "Plain"):
        as_json = ok(cli("item", "get", item_id, "--json"))
        assert json.loads(as_json.out)["description"] == text
        human = ok(cli("item", "get", item_id))
        assert human.out.startswith(f"{item_id}: ")
    listed = ok(cli("item", "list", "--json"))
    assert {r["description"] for r in json.loads(listed.out)} == {text}
    events = ok(cli("events", "--stream", "Plain"))
    assert [json.loads(line)["data"]["description"] for line in events.out.splitlines()] == [
        "plain",
        text,
    ]
    history = ok(cli("item", "history", "Plain", "--json"))
    assert [entry["description"] for entry in json.loads(history.out)] == ["plain", text]
    # Human forms of everything that shows the text.
    for argv in (
        ("item", "list"),
        ("item", "list", "--include-deleted"),
        ("item", "history", "Plain"),
        ("item", "search", "Plain"),
        ("item", "update", "Plain", text),  # unchanged: says so, shows the id
        ("item", "update", "Plain", "x", "--dry-run"),
        ("item", "update", "Plain", text, "--idempotency-key", "k1"),  # already applied
        ("status",),
    ):
        ok(cli(*argv))


@pytest.mark.parametrize("item_id", STORED_IDS.values(), ids=STORED_IDS.keys())
def test_an_id_with_markup_sql_or_wildcards_is_stored_exactly(
    cli: InProcessCli, store: Path, item_id: str
) -> None:
    created = ok(cli("item", "create", item_id, "-d", "text", "--json"))
    assert json.loads(created.out)["item_id"] == item_id
    assert [row[2] for row in event_rows(store / "journal.db")] == [item_id]
    ok(cli("item", "update", item_id, "more"))
    ok(cli("sync"))
    assert json.loads(ok(cli("item", "get", item_id, "--json")).out)["item_id"] == item_id
    assert ok(cli("item", "get", item_id)).out == f"{item_id}: more\n"
    assert ok(cli("item", "list")).out == f"{item_id}\n"
    assert json.loads(ok(cli("item", "list", "--json")).out)[0]["item_id"] == item_id
    assert ok(cli("item", "list", "--prefix", item_id)).out == f"{item_id}\n"
    assert [e["stream_id"] for e in map(json.loads, ok(cli("events")).out.splitlines())] == [
        item_id,
        item_id,
    ]
    assert len(json.loads(ok(cli("item", "history", item_id, "--json")).out)) == 2
    ok(cli("item", "delete", item_id))
    ok(cli("sync"))
    assert ok(cli("item", "list")).out == ""
    assert event_count(store / "journal.db") == 3


@pytest.mark.parametrize("item_id", REFUSED_IDS.values(), ids=REFUSED_IDS.keys())
def test_an_id_with_control_or_format_characters_is_refused_and_nothing_is_written(
    cli: InProcessCli, store: Path, item_id: str
) -> None:
    ok(cli("item", "create", "Existing"))
    for argv in (
        ("item", "create", item_id),
        ("item", "update", item_id, "x"),
        ("item", "delete", item_id),
    ):
        refused(cli(*argv), "invalid item id")
    ok(cli("sync"))
    for argv in (("item", "get", item_id), ("item", "history", item_id)):
        refused(cli(*argv), "invalid item id")
    assert event_count(store / "journal.db") == 1


def test_a_nul_in_a_description_on_stdin_is_refused(cli: InProcessCli, store: Path) -> None:
    ok(cli("item", "create", "Existing"))
    refused(cli("item", "create", "X", "-d", "-", stdin=b"before\x00after"), "NUL")
    refused(cli("item", "update", "Existing", "-", stdin=b"\x00"), "NUL")
    assert event_count(store / "journal.db") == 1


def test_invalid_utf8_on_stdin_is_refused(cli: InProcessCli, store: Path) -> None:
    ok(cli("item", "create", "Existing"))
    refused(cli("item", "create", "X", "-d", "-", stdin=b"caf\xe9"), "not valid UTF-8")
    refused(cli("item", "update", "Existing", "-", stdin=b"\xff\xfe"), "not valid UTF-8")
    assert event_count(store / "journal.db") == 1


def test_a_10_mb_description_on_stdin_is_refused_and_nothing_is_written(
    cli: InProcessCli, store: Path
) -> None:
    huge = b"x" * (10 * 1024 * 1024)
    refused(cli("item", "create", "Huge", "-d", "-", stdin=huge), "limit")
    assert not (store / "journal.db").exists()
    ok(cli("item", "create", "Existing"))
    refused(cli("item", "update", "Existing", "-", stdin=huge), "limit")
    refused(cli("item", "create", "Huge", "-d", "-", stdin=b"y" * (MAX_DESCRIPTION_BYTES + 1)))
    assert event_count(store / "journal.db") == 1
    # The limit itself is allowed, byte for byte.
    ok(cli("item", "create", "Largest", "-d", "-", stdin=b"z" * MAX_DESCRIPTION_BYTES))
    assert stored_descriptions(store / "journal.db")["Largest"] == "z" * MAX_DESCRIPTION_BYTES


# --- SQL, FTS5 and LIKE syntax is text -----------------------------------------------------------

SQL = "'; DROP TABLE events; --"


def test_sql_in_ids_descriptions_and_search_is_only_text(
    cli: InProcessCli, store: Path, cqrs_exe: str
) -> None:
    ok(cli("item", "create", SQL, "-d", SQL))
    ok(cli("item", "create", "Robert'); DROP TABLE items;--", "-d", "x' OR '1'='1"))
    ok(cli("sync"))
    found = ok(cli("item", "search", SQL, "--json"))
    assert [hit["item_id"] for hit in json.loads(found.out)] == [SQL]
    assert ok(cli("item", "search", "x' OR '1'='1")).out.startswith("Robert'); DROP TABLE items;--")
    assert ok(cli("item", "list", "--prefix", "'")).out == f"{SQL}\n"
    assert (
        ok(cli("item", "list", "--after", "' OR 1=1 --")).out
        == f"{SQL}\nRobert'); DROP TABLE items;--\n"
    )
    result = run_cqrs(cqrs_exe, "journal", "verify", env=child_env())
    assert result.returncode == 0, result.stderr
    assert event_count(store / "journal.db") == 2


FTS_WORDS = ['"', "*", "NEAR(", "OR", "AND", "NOT", "x*", "item_id:x", "^x", "(", ")", "+", "-x"]


def test_fts_syntax_in_a_plain_search_is_literal_text(cli: InProcessCli, store: Path) -> None:
    description = 'NEAR( OR AND NOT "quoted" item_id:x ^x star*'
    ok(cli("item", "create", "Fts", "-d", description))
    # (No word here starts with one of FTS_WORDS: search matches words by prefix.)
    ok(cli("item", "create", "Other", "-d", "plain text"))
    ok(cli("sync"))
    for words in [*FTS_WORDS, " ".join(FTS_WORDS)]:
        result = ok(cli("item", "search", "--", words))
        assert result.out in ("", f"Fts: {description}\n")
    # Words are matched as words, whatever syntax they would be to FTS5.
    assert ok(cli("item", "search", "NEAR(")).out.startswith("Fts: ")
    assert ok(cli("item", "search", "OR")).out.startswith("Fts: ")
    assert ok(cli("item", "search", "NOT")).out.startswith("Fts: ")


@pytest.mark.parametrize("query", [*FTS_WORDS, 'unterminated "', "a NEAR(b", "AND AND"])
def test_an_fts_query_either_runs_or_is_a_usage_error(
    cli: InProcessCli, store: Path, query: str
) -> None:
    ok(cli("item", "create", "Fts", "-d", "alpha beta"))
    ok(cli("sync"))
    result = cli("item", "search", "--fts", "--", query)
    if result.code != 0:
        refused(result, "invalid full-text query")
    else:
        ok(result)


def test_percent_and_underscore_in_a_prefix_are_literal(cli: InProcessCli, store: Path) -> None:
    for item_id in ("a%b", "axb", "a_c", "abc", "a\\d", "%", "_"):
        ok(cli("item", "create", item_id))
    ok(cli("sync"))
    assert ok(cli("item", "list", "--prefix", "a%")).out == "a%b\n"
    assert ok(cli("item", "list", "--prefix", "a_")).out == "a_c\n"
    assert ok(cli("item", "list", "--prefix", "a\\")).out == "a\\d\n"
    assert ok(cli("item", "list", "--prefix", "%")).out == "%\n"
    assert ok(cli("item", "list", "--prefix", "_")).out == "_\n"
    assert ok(cli("item", "list", "--prefix", "a")).out == "a%b\na\\d\na_c\nabc\naxb\n"


# --- Numbers -----------------------------------------------------------------------------------

NUMBER_OPTIONS = {
    "expect-version": ("item", "update", "Item1", "new", "--expect-version"),
    "min-position": ("item", "get", "Item1", "--wait", "0", "--min-position"),
    "list-limit": ("item", "list", "--limit"),
    "list-min-position": ("item", "list", "--wait", "0", "--min-position"),
    "at": ("item", "get", "Item1", "--at"),
    "events-after": ("events", "--after"),
    "events-limit": ("events", "--limit"),
    "search-limit": ("item", "search", "x", "--limit"),
    "batch-size": ("sync", "--batch-size"),
}
BAD_NUMBERS = {"2**63": str(2**63), "minus-1": "-1", "abc": "abc", "empty": "", "float": "1.5"}


@pytest.mark.parametrize("argv", NUMBER_OPTIONS.values(), ids=NUMBER_OPTIONS.keys())
def test_an_out_of_range_or_malformed_number_is_a_usage_error(
    cli: InProcessCli, store: Path, argv: tuple[str, ...]
) -> None:
    ok(cli("item", "create", "Item1"))
    ok(cli("sync"))
    for value in BAD_NUMBERS.values():
        refused(cli(*argv, value), argv[-1])
    assert event_count(store / "journal.db") == 1


def test_the_largest_number_is_accepted_where_it_makes_sense(
    cli: InProcessCli, store: Path
) -> None:
    largest = str(2**63 - 1)
    ok(cli("item", "create", "Item1"))
    ok(cli("sync"))
    conflict = cli("item", "update", "Item1", "new", "--expect-version", largest)
    assert conflict.code == 4, conflict
    assert ok(cli("item", "list", "--limit", largest)).out == "Item1\n"
    stale = cli("item", "get", "Item1", "--min-position", largest, "--wait", "0")
    assert stale.code == 5, stale
    assert ok(cli("item", "get", "Item1", "--at", largest)).out == "Item1: \n"
    assert ok(cli("events", "--after", largest)).out == ""
    assert event_count(store / "journal.db") == 1


# --- Invalid UTF-8 on argv (only a real process gets bytes) ---------------------------------------

BAD = b"caf\xe9\xff"
INVALID_ARGV = {
    "create-id": ([b"item", b"create", BAD], "not valid UTF-8"),
    "create-description": ([b"item", b"create", b"X", b"-d", BAD], "not valid UTF-8"),
    "update-description": ([b"item", b"update", b"Item1", BAD], "not valid UTF-8"),
    "get-id": ([b"item", b"get", BAD], "not valid UTF-8"),
    "history-id": ([b"item", b"history", BAD], "not valid UTF-8"),
    "idempotency-key": ([b"item", b"create", b"X", b"--idempotency-key", BAD], "key"),
    "correlation-id": ([b"item", b"create", b"X", b"--correlation-id", BAD], "correlation"),
    "search": ([b"item", b"search", BAD], ""),
    "search-fts": ([b"item", b"search", b"--fts", BAD], ""),
    "list-prefix": ([b"item", b"list", b"--prefix", BAD], ""),
    "list-after": ([b"item", b"list", b"--after", BAD], ""),
    "events-stream": ([b"events", b"--stream", BAD], ""),
}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [pytest.param(*case, id=name) for name, case in INVALID_ARGV.items()],
)
def test_invalid_utf8_on_argv_is_a_usage_error(
    cqrs_exe: str, store: Path, argv: list[bytes], needle: str
) -> None:
    with CommandService(store) as service:
        service.create_item("Item1")
    sync_projection(StorePaths.coerce(store))
    result = run_cqrs(cqrs_exe, *argv, env=child_env())
    line = assert_clean_failure(result, 2, needle)
    assert_terminal_safe(line)
    assert event_count(store / "journal.db") == 1


# --- On a terminal: tables ----------------------------------------------------------------------


@pytest.fixture
def hostile_store(cli: InProcessCli, store: Path) -> Path:
    """Items whose ids are rich markup and whose descriptions hold every hostile text,
    one of them deleted, all synced."""
    everything = HOSTILE_TEXT["everything"]
    ok(cli("item", "create", "[bold]x", "-d", everything))
    ok(cli("item", "create", "[/]", "-d", "[/] [bold]b " + HOSTILE_TEXT["osc8-link"]))
    ok(cli("item", "update", "[/]", everything + " v2"))
    ok(cli("item", "create", "gone[/]", "-d", everything))
    ok(cli("item", "delete", "gone[/]"))
    ok(cli("sync"))
    return store


TERMINAL_COMMANDS = {
    "list": ("item", "list"),
    "list-deleted": ("item", "list", "--include-deleted"),
    "history": ("item", "history", "[/]"),
    "search": ("item", "search", "bold"),
    "get": ("item", "get", "[bold]x"),
    "status": ("status",),
    "create": ("item", "create", "[red]new[/]", "-d", HOSTILE_TEXT["everything"]),
    "not-found": ("item", "get", "[bold]missing"),
}


@pytest.mark.parametrize("term", ["dumb", "xterm-256color"])
@pytest.mark.parametrize("argv", TERMINAL_COMMANDS.values(), ids=TERMINAL_COMMANDS.keys())
def test_tables_on_a_terminal_never_carry_raw_control_characters(
    hostile_store: Path, cqrs_exe: str, argv: tuple[str, ...], term: str
) -> None:
    env = child_env(COLUMNS="400", LINES="50", TERM=term)
    env.pop("NO_COLOR", None)
    code, out, err = run_on_terminal([cqrs_exe, *argv], env)
    assert code == (3 if argv[-1] == "[bold]missing" else 0), err
    assert b"Traceback" not in out + err
    # rich's own colour sequences are allowed; nothing else a terminal would act on.
    assert_terminal_safe(out, allow_sgr=True)
    assert_terminal_safe(err)
    text = out.decode()
    if argv[:2] in (("item", "list"), ("item", "search")):
        assert "[bold]x" in text, "markup in an id must show as text"
        assert "\\x1b" in text, "an escape must show as a visible \\x1b"
    if argv[:2] == ("item", "history"):
        assert "\\u202e" in text


def test_piped_human_output_of_hostile_items_is_safe(hostile_store: Path, cqrs_exe: str) -> None:
    env = child_env()
    for argv in TERMINAL_COMMANDS.values():
        result = run_cqrs(cqrs_exe, *argv, env=env)
        assert result.returncode in (0, 3), result.stderr
        assert b"Traceback" not in result.stderr
        assert_terminal_safe(result.stdout)
        assert_terminal_safe(result.stderr)
    listed = run_cqrs(cqrs_exe, "item", "list", "--include-deleted", env=env)
    assert listed.stdout.decode().splitlines() == ["[/]", "[bold]x", "gone[/]"]
