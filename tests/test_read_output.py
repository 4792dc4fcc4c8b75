"""What the read commands print when things go wrong or get big: stdout empty or valid on
failure, a terminal's first screen at once in bounded memory, contradicting options as
usage errors, the deleted marker, and tables that read well (the issue "Every condition
a user meets")."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import InProcessCli

from cqrs_cli import CommandService, QueryService, StorePaths
from cqrs_cli.cli import tables
from cqrs_cli.cli.item_params import MAX_INT
from cqrs_cli.read.models import HistoryEntry, ItemView

pytestmark = pytest.mark.usefixtures("fresh_cli_state")

FORMATS = [(), ("--json",), ("--nl",)]
READS = [("item", "list"), ("item", "search", "Item1"), ("item", "history", "Item1")]


def create(store: Path | StorePaths, *ids: str) -> None:
    with CommandService(store) as commands:
        for item_id in ids:
            commands.create_item(item_id, "text")


def on_a_terminal(monkeypatch: pytest.MonkeyPatch, lines: int = 24) -> None:
    monkeypatch.setattr(type(sys.stdout), "isatty", lambda _self: True)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LINES", str(lines))


# 1. A command that fails leaves stdout empty


@pytest.mark.parametrize("form", FORMATS, ids=lambda f: " ".join(f) or "plain")
@pytest.mark.parametrize("argv", READS, ids=lambda a: a[1])
def test_a_read_without_a_projection_prints_nothing_and_exits_5(
    store: Path, cli: InProcessCli, argv: tuple[str, ...], form: tuple[str, ...]
) -> None:
    create(store, "Item1")
    result = cli(*argv, *form)
    assert (result.code, result.out) == (5, "")
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize("form", FORMATS, ids=lambda f: " ".join(f) or "plain")
@pytest.mark.parametrize("argv", READS, ids=lambda a: a[1])
@pytest.mark.parametrize("wrong", ["text", "another journal's"])
def test_a_wrong_projection_prints_nothing_and_exits_7(
    store: Path,
    tmp_path: Path,
    cli: InProcessCli,
    argv: tuple[str, ...],
    form: tuple[str, ...],
    wrong: str,
) -> None:
    create(store, "Item1")
    if wrong == "text":
        projection = tmp_path / "notes.txt"
        projection.write_text("not a projection\n")
    else:
        other = StorePaths(str(tmp_path / "j.db"), str(tmp_path / "p.db"))
        create(other, "Item1")
        with QueryService(other) as queries:
            queries.sync()
        projection = Path(other.projection)
    result = cli("--projection", str(projection), *argv, *form)
    assert (result.code, result.out) == (7, "")
    assert len(result.err.splitlines()) == 1


def test_the_query_service_checks_a_listing_at_the_call(store: Path) -> None:
    create(store, "Item1")
    from cqrs_cli.errors import StaleReadError

    with QueryService(store) as queries:
        with pytest.raises(StaleReadError):
            queries.list_items()
        with pytest.raises(StaleReadError):
            queries.item_ids()


# 2. A terminal: the first screen at once, memory bounded


def items(count: int, produced: list[int]) -> Iterator[ItemView]:
    for n in range(count):
        produced[0] += 1
        yield ItemView(f"item-{n:07d}", f"text {n}", n + 1, False, "t", "2024-05-01T12:00:00.5Z", n)


class Watching(io.StringIO):
    """Output that records, at each write, how many records had been read but not
    yet written (the records held)."""

    def __init__(self, produced: list[int]) -> None:
        super().__init__()
        self.produced = produced
        self.lines = 0
        self.held = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        self.held = max(self.held, self.produced[0] - (self.lines - 1))
        return super().write(text)


def test_a_long_listing_is_streamed_holding_at_most_one_screen() -> None:
    produced = [0]
    out = Watching(produced)
    tables.show(tables.ITEM_COLUMNS, items(100_000, produced), lines=30, out=out)
    assert out.lines == 100_001  # the header, then one line per item
    assert out.held <= 30  # never more than a screen read ahead of what was written
    first = out.getvalue().splitlines()[:2]
    assert first[0].split() == ["id", "version", "updated", "description"]
    assert first[1].split() == ["item-0000000", "1", "2024-05-01", "12:00:00Z", "text", "0"]


def test_a_listing_that_fits_on_the_screen_is_a_table_with_numbers_right_aligned() -> None:
    out = io.StringIO()
    tables.show(tables.ITEM_COLUMNS, items(3, [0]), lines=30, out=out)
    text = out.getvalue()
    assert "┃" in text or "|" in text  # rich's table
    assert "2024-05-01 12:00:00Z" in text and "12:00:00.5" not in text
    rows = [line for line in text.splitlines() if "item-0000002" in line]
    assert rows and rows[0].split("│")[2] == "       3 "  # "version", right-aligned


def test_list_on_a_terminal_streams_lines_when_longer_than_the_screen(
    store: Path, cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(store, *(f"Item{n:03d}" for n in range(50)))
    with QueryService(store) as queries:
        queries.sync()
    on_a_terminal(monkeypatch, lines=20)
    monkeypatch.setenv("PAGER", "less")  # no real terminal here: no pager either
    result = cli("item", "list")
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) == 51 and lines[0].split()[0] == "id"
    short = cli("item", "list", "--limit", "3", "--no-pager")
    assert short.code == 0 and "Item002" in short.out and "━" in short.out


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CQRS_PAGER": "most", "PAGER": "more"}, "most"),
        ({"PAGER": "more"}, "more"),
        ({"PAGER": "cat"}, None),
        ({"CQRS_PAGER": "", "PAGER": "more"}, None),
        ({"CQRS_PAGER": "cat"}, None),
    ],
)
def test_the_pager_honours_cqrs_pager_then_pager(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str | None
) -> None:
    for name in ("CQRS_PAGER", "PAGER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tables.pager_command() == expected


def test_a_pager_reads_the_rows_and_its_quitting_ends_the_command_quietly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The pager gets the rows; one that quits early (as `q` in less) stops the listing
    with a closed stdout (main: exit 0), long before a million rows are read."""
    from cqrs_cli.cli.output import StdoutClosed

    monkeypatch.setattr(tables, "_real_terminal", lambda: True)
    seen = tmp_path / "seen"
    monkeypatch.setenv("CQRS_PAGER", f"head -3 > {seen}")
    produced = [0]
    with pytest.raises(StdoutClosed):
        tables.show(tables.ITEM_COLUMNS, items(1_000_000, produced), lines=30)
    assert produced[0] < 1_000_000
    assert seen.read_text().splitlines()[1].startswith("item-0000000")


def test_history_on_a_terminal_keeps_its_cap_when_streamed(
    store: Path, cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(store, "Item1")
    with CommandService(store) as commands:
        for n in range(30):
            commands.update_item("Item1", f"change {n}")
    with QueryService(store) as queries:
        queries.sync()
    on_a_terminal(monkeypatch, lines=10)
    monkeypatch.setattr("cqrs_cli.cli.read_commands.HISTORY_TABLE_ROWS", 20)
    result = cli("item", "history", "Item1")
    assert result.code == 0
    assert len(result.out.splitlines()) == 21
    assert "--after 20" in result.err
    assert ".0" not in result.out.split("\n")[1]  # to the second


# 3. Options that contradict each other, or do nothing alone


CONTRADICTIONS = [
    (("item", "list", "--json", "--nl"), "--json and --nl"),
    (("item", "search", "x", "--json", "--nl"), "--json and --nl"),
    (("item", "history", "Item1", "--nl", "--json"), "--json and --nl"),
    (("item", "list", "--wait", "3"), "--wait only applies with --min-position"),
    (("item", "get", "Item1", "--wait", "3"), "--wait only applies with --min-position"),
    (("item", "search", "x", "--wait", "3"), "--wait only applies with --min-position"),
    (("item", "history", "Item1", "--wait", "3"), "--wait only applies with --min-position"),
]


@pytest.mark.parametrize(
    ("argv", "words"), CONTRADICTIONS, ids=[" ".join(argv) for argv, _ in CONTRADICTIONS]
)
def test_contradicting_options_are_a_one_line_usage_error(
    store: Path, cli: InProcessCli, argv: tuple[str, ...], words: str
) -> None:
    create(store, "Item1")
    result = cli(*argv)
    assert (result.code, result.out) == (2, "")
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith(f"cqrs item {argv[1]}: error: ")
    assert words in result.err


def test_wait_with_min_position_is_accepted(store: Path, cli: InProcessCli) -> None:
    create(store, "Item1")
    assert cli("item", "list", "--sync", "--min-position", "1", "--wait", "1").code == 0


# 4. A deleted item shows its marker


def test_get_include_deleted_marks_a_deleted_item_and_json_is_unchanged(
    store: Path, cli: InProcessCli
) -> None:
    with CommandService(store) as commands:
        commands.create_item("Y1")
        commands.delete_item("Y1")
    assert cli("item", "get", "Y1", "--include-deleted", "--sync") == (0, "Y1:  (deleted)\n", "")
    record = json.loads(cli("item", "get", "Y1", "--include-deleted", "--json").out)
    assert record["deleted"] is True and record["description"] == ""


# 5. Help and tables


@pytest.mark.parametrize("command", ["get", "list", "history", "search"])
def test_read_help_shows_no_huge_range_no_braces_and_no_type_names(
    command: str, cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("item", command, "--help")
    assert result.code == 0
    assert str(MAX_INT) not in result.out
    assert "{" not in result.out and "<str>" not in result.out
    if command != "search":
        assert "[default: 5]" in result.out  # --wait's default, not eaten as markup


def test_an_out_of_range_count_still_names_the_whole_range(cli: InProcessCli) -> None:
    result = cli("item", "list", "--limit", str(MAX_INT + 1))
    assert result.code == 2
    assert f"0<=x<={MAX_INT}" in result.err


def test_times_to_the_second() -> None:
    assert tables.to_the_second("2024-05-01T12:00:00.123456Z") == "2024-05-01 12:00:00Z"
    assert tables.to_the_second("2024-05-01T12:00:00+02:00") == "2024-05-01 12:00:00+02:00"
    assert tables.to_the_second("2024-05-01") == "2024-05-01"


def test_history_entries_stream_too() -> None:
    entries = (
        HistoryEntry(n, "X", n, "ItemUpdated", None if n % 2 else "d", "2024-05-01T00:00:00.1Z")
        for n in range(1, 101)
    )
    out = io.StringIO()
    tables.show(tables.HISTORY_COLUMNS, entries, lines=10, out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 101
    assert lines[1].split() == ["1", "ItemUpdated", "2024-05-01", "00:00:00Z", "1"]
