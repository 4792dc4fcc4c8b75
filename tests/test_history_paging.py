"""`cqrs item history` pages and streams: --limit, --after, --before, --newest-first,
keyset pagination by version that sees every version once, bounds, "not found" against
"past the end", and memory that does not grow with the history (QueryService.iter_history
underneath)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from common import InProcessCli, child_env

from cqrs_cli import CommandService, QueryService
from cqrs_cli.cli.read_commands import HISTORY_TABLE_ROWS
from cqrs_cli.domain.item import ItemNotFound
from cqrs_cli.errors import UsageError

pytestmark = pytest.mark.usefixtures("fresh_cli_state")

VERSIONS = list(range(1, 11))


def seed(store: Path) -> None:
    """Item1 with 10 changes (a delete and a re-create among them), Other in between."""
    with CommandService(store) as commands:
        commands.create_item("Item1", "v1")
        commands.create_item("Other", "not this one")
        for version in range(2, 6):
            commands.update_item("Item1", f"v{version}")
        commands.delete_item("Item1")
        commands.create_item("Item1", "v7")
        for version in range(8, 11):
            commands.update_item("Item1", f"v{version}")
    with QueryService(store) as queries:
        queries.sync()


def versions(out: str) -> list[int]:
    """The versions of --nl output, in order."""
    return [json.loads(line)["version"] for line in out.splitlines()]


def page_through(cli: InProcessCli, size: int, *, newest_first: bool) -> list[list[int]]:
    """Every page of Item1's history, `size` changes a page, following the cursor (the
    last version seen) until an empty page."""
    pages: list[list[int]] = []
    cursor: list[str] = []
    order = ["--newest-first"] if newest_first else []
    while True:
        result = cli("item", "history", "Item1", "--nl", "--limit", str(size), *order, *cursor)
        assert (result.code, result.err) == (0, "")
        page = versions(result.out)
        if not page:
            return pages
        assert len(page) <= size
        pages.append(page)
        cursor = ["--before" if newest_first else "--after", str(page[-1])]


# Paging covers every version once


@pytest.mark.parametrize("size", [1, 3, 4, 10, 11])
def test_paging_forward_sees_every_version_once_in_order(
    store: Path, cli: InProcessCli, size: int
) -> None:
    seed(store)
    pages = page_through(cli, size, newest_first=False)
    assert [v for page in pages for v in page] == VERSIONS
    assert all(len(page) == size for page in pages[:-1])


@pytest.mark.parametrize("size", [1, 3, 4, 10, 11])
def test_paging_backward_newest_first_sees_every_version_once(
    store: Path, cli: InProcessCli, size: int
) -> None:
    seed(store)
    pages = page_through(cli, size, newest_first=True)
    assert [v for page in pages for v in page] == VERSIONS[::-1]
    assert all(len(page) == size for page in pages[:-1])


def test_the_latest_n_newest_first(store: Path, cli: InProcessCli) -> None:
    seed(store)
    result = cli("item", "history", "Item1", "--newest-first", "--limit", "3", "--nl")
    assert versions(result.out) == [10, 9, 8]
    assert [json.loads(line)["description"] for line in result.out.splitlines()] == [
        "v10",
        "v9",
        "v8",
    ]


def test_after_and_before_are_version_bounds_whatever_the_order(
    store: Path, cli: InProcessCli
) -> None:
    seed(store)
    window = ("--after", "3", "--before", "7", "--nl")
    assert versions(cli("item", "history", "Item1", *window).out) == [4, 5, 6]
    assert versions(cli("item", "history", "Item1", *window, "--newest-first").out) == [6, 5, 4]
    # With --newest-first, --after keeps the versions after it, newest first.
    newest = cli("item", "history", "Item1", "--after", "7", "--newest-first", "--nl")
    assert versions(newest.out) == [10, 9, 8]
    assert versions(cli("item", "history", "Item1", "--before", "3", "--nl").out) == [1, 2]


def test_the_plain_and_json_forms_page_the_same(store: Path, cli: InProcessCli) -> None:
    seed(store)
    plain = cli("item", "history", "Item1", "--after", "5", "--limit", "2")
    assert [line.split("\t")[0] for line in plain.out.splitlines()] == ["6", "7"]
    assert plain.out.splitlines()[0].split("\t")[1] == "ItemDeleted"
    array = cli("item", "history", "Item1", "--after", "5", "--limit", "2", "--json")
    assert array.out.count("\n") == 1
    assert [entry["version"] for entry in json.loads(array.out)] == [6, 7]
    whole = json.loads(cli("item", "history", "Item1", "--json").out)
    assert [entry["version"] for entry in whole] == VERSIONS
    assert whole[6:8] == [
        json.loads(line)
        for line in cli(
            "item", "history", "Item1", "--after", "6", "--before", "9", "--nl"
        ).out.splitlines()
    ]


# Empty pages, not found, bounds


@pytest.mark.parametrize(("form", "empty"), [((), ""), (("--nl",), ""), (("--json",), "[]\n")])
@pytest.mark.parametrize(
    "page",
    [
        ("--limit", "0"),
        ("--after", "10"),
        ("--after", str(2**63 - 1)),
        ("--before", "1"),
        ("--before", "0"),
        ("--after", "5", "--before", "6"),
        ("--after", "7", "--before", "3"),
        ("--before", "1", "--newest-first"),
    ],
)
def test_an_empty_page_of_a_known_item_exits_0(
    store: Path, cli: InProcessCli, page: tuple[str, ...], form: tuple[str, ...], empty: str
) -> None:
    seed(store)
    assert cli("item", "history", "Item1", *page, *form) == (0, empty, "")


@pytest.mark.parametrize("form", [(), ("--nl",), ("--json",)])
@pytest.mark.parametrize("page", [(), ("--limit", "0"), ("--after", "3"), ("--newest-first",)])
def test_an_item_with_no_history_exits_3_and_prints_nothing(
    store: Path, cli: InProcessCli, page: tuple[str, ...], form: tuple[str, ...]
) -> None:
    seed(store)
    result = cli("item", "history", "Nope", *page, *form)
    assert (result.code, result.out) == (3, "")
    assert result.err.splitlines() == ["cqrs: error: item 'Nope' does not exist"]


def test_history_of_an_empty_store_exits_3(cli: InProcessCli) -> None:
    assert cli("item", "history", "Item1", "--limit", "1").code == 3


@pytest.mark.parametrize("option", ["--limit", "--after", "--before"])
@pytest.mark.parametrize("value", ["-1", "x", "1.5", str(2**63)])
def test_bad_bounds_are_usage_errors(
    store: Path, cli: InProcessCli, option: str, value: str
) -> None:
    seed(store)
    result = cli("item", "history", "Item1", option, value)
    assert (result.code, result.out) == (2, "")
    assert option in result.err


# The Python API


def test_iter_history_pages_and_history_stays_a_list(store: Path) -> None:
    seed(store)
    with QueryService(store) as queries:
        whole = queries.history("Item1")
        assert isinstance(whole, list)
        assert [entry.version for entry in whole] == VERSIONS
        assert list(queries.iter_history("Item1")) == whole
        page = queries.iter_history("Item1", after=2, limit=3)
        assert [entry.version for entry in page] == [3, 4, 5]
        back = queries.iter_history("Item1", before=9, limit=2, newest_first=True)
        assert [entry.version for entry in back] == [8, 7]
        assert list(queries.iter_history("Item1", limit=0)) == []
        assert list(queries.iter_history("Item1", after=99)) == []


def test_iter_history_says_not_found_at_the_call_not_at_the_first_row(store: Path) -> None:
    seed(store)
    with QueryService(store) as queries:
        with pytest.raises(ItemNotFound):
            queries.iter_history("Nope", limit=0)
        with pytest.raises(ItemNotFound):
            queries.history("Nope")


@pytest.mark.parametrize("bound", ["limit", "after", "before"])
def test_iter_history_refuses_negative_bounds(store: Path, bound: str) -> None:
    seed(store)
    with QueryService(store) as queries, pytest.raises(UsageError, match=bound):
        queries.iter_history("Item1", **{bound: -1})  # type: ignore[arg-type]


# A table on a terminal: built in memory, so bounded


def test_the_terminal_table_shows_at_most_the_limit_or_the_cap(
    store: Path, cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(store)
    add_history(store, "Item1", HISTORY_TABLE_ROWS + 5, first_version=11)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(type(sys.stdout), "isatty", lambda _self: True)

    limited = cli("item", "history", "Item1", "--limit", "3")
    assert (limited.code, limited.err) == (0, "")
    assert limited.out.count("ItemCreated") == 1
    assert limited.out.count("ItemUpdated") == 2

    capped = cli("item", "history", "Item1", "--newest-first")
    assert capped.code == 0
    assert capped.out.count("ItemUpdated") == HISTORY_TABLE_ROWS
    total = len(VERSIONS) + HISTORY_TABLE_ROWS + 5
    last_shown = total - HISTORY_TABLE_ROWS + 1
    assert capped.err == (
        f"cqrs: note: the first {HISTORY_TABLE_ROWS} changes only; for the next ones pass "
        f"--before {last_shown}, or give --limit\n"
    )
    assert cli("item", "history", "Item1", "-q").err == ""


# Memory does not grow with the history


def add_history(store: Path, item_id: str, count: int, *, first_version: int) -> None:
    """`count` more ItemUpdated changes of `item_id`, written straight into the
    projection's item_history with SQL (as sync would, without the journal events)."""
    conn = sqlite3.connect(store / "projection.db")
    try:
        with conn:
            conn.execute(
                "INSERT INTO item_history "
                "(position, item_id, version, event_type, description, recorded_at) "
                "WITH RECURSIVE v(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM v WHERE n < ?) "
                "SELECT 1000000 + n, ?, n, 'ItemUpdated', 'change number ' || n, "
                "'2024-01-01T00:00:00.000000Z' FROM v",
                (first_version, first_version + count - 1, item_id),
            )
    finally:
        conn.close()


def peak_rss_of_start(exe: str, store: Path, *argv: str) -> tuple[int, str]:
    """`cqrs -q ARGV | head -c 100`: the child's peak RSS in KiB, and the first 100
    characters it printed. Closes the pipe then (the child exits on EPIPE)."""
    child = subprocess.Popen(
        [exe, "-q", *argv], stdout=subprocess.PIPE, env=child_env(store), text=True
    )
    assert child.stdout is not None
    start = child.stdout.read(100)
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    return usage.ru_maxrss, start


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB")
def test_a_long_history_streams_in_bounded_memory(store: Path, cqrs_exe: str) -> None:
    """Built whole in memory, the history of 200,000 changes took ~105 MB more than that
    of one (125 MB against 20 MB); streamed, it takes about nothing more."""
    with CommandService(store) as commands:
        commands.create_item("Small", "one change")
        commands.create_item("Big", "the first of many")
    with QueryService(store) as queries:
        queries.sync()
    add_history(store, "Big", 200_000, first_version=2)
    bound = 20 * 1024

    small, _ = peak_rss_of_start(cqrs_exe, store, "item", "history", "--nl", "Small")
    for form, start in [
        (("--nl",), '{"position": 2, "item_id": "Big", "version": 1,'),
        (("--json",), '[{"position": 2, "item_id": "Big", "version": 1,'),
        (("--nl", "--newest-first"), '{"position": 1200001, "item_id": "Big", "version": 200001,'),
        ((), "1\tItemCreated\t"),
    ]:
        big, out = peak_rss_of_start(cqrs_exe, store, "item", "history", *form, "Big")
        assert out.startswith(start), (form, out)
        assert big < small + bound, (form, small, big)
