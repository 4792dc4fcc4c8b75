"""The read commands as a user runs them: item get/list/history/search and status, their
output formats, exit codes, the stale note, read-your-writes options, and the files a
read refuses (and never changes or creates)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from common import InProcessCli, Output, run_cqrs
from projection_helpers import journal_events

from cqrs_cli import CommandService, QueryService, StorePaths
from cqrs_cli.cli.main import run

pytestmark = pytest.mark.usefixtures("fresh_cli_state")


def create(store: Path | StorePaths, *items: tuple[str, str]) -> int:
    """Create items; return the last journal position."""
    position = 0
    with CommandService(store) as commands:
        for item_id, description in items:
            position = commands.create_item(item_id, description).position or position
    return position


def sync_store(store: Path | StorePaths) -> None:
    with QueryService(store) as queries:
        queries.sync()


def seed(store: Path) -> None:
    """The seed's scenario, synced."""
    with CommandService(store) as commands:
        commands.create_item("Item1")
        commands.update_item("Item1", "Updated Description")
    sync_store(store)


# item get


def test_get_prints_the_item_as_the_seed_does(store: Path, cli: InProcessCli) -> None:
    seed(store)
    assert cli("item", "get", "Item1") == (0, "Item1: Updated Description\n", "")


def test_get_json_is_the_full_record(store: Path, cli: InProcessCli) -> None:
    seed(store)
    result = cli("item", "get", "Item1", "--json")
    assert result.code == 0
    assert result.out.count("\n") == 1
    created, updated = journal_events(store / "journal.db")
    assert json.loads(result.out) == {
        "item_id": "Item1",
        "description": "Updated Description",
        "version": 2,
        "deleted": False,
        "created_at": created.recorded_at,
        "updated_at": updated.recorded_at,
        "position": 2,
    }


def test_get_of_an_unknown_item_exits_3_with_one_line(store: Path, cli: InProcessCli) -> None:
    seed(store)
    result = cli("item", "get", "Nope")
    assert (result.code, result.out) == (3, "")
    assert result.err.splitlines() == ["cqrs: error: item 'Nope' does not exist"]


def test_get_of_a_deleted_item_exits_3_unless_deleted_items_are_asked_for(
    store: Path, cli: InProcessCli
) -> None:
    seed(store)
    with CommandService(store) as commands:
        commands.delete_item("Item1")
    sync_store(store)
    result = cli("item", "get", "Item1")
    assert (result.code, result.out) == (3, "")
    assert result.err.splitlines() == ["cqrs: error: item 'Item1' was deleted"]

    assert cli("item", "get", "Item1", "--include-deleted") == (
        0,
        "Item1: Updated Description (deleted)\n",
        "",
    )
    record = json.loads(cli("item", "get", "Item1", "--include-deleted", "--json").out)
    assert (record["deleted"], record["version"], record["position"]) == (True, 3, 3)


# item list

IDS = ["b", "a", "B", "a-1", "é", "z", "10", "9", "Item10", "Item2", "日本"]


def test_list_piped_prints_one_id_per_line_in_id_order(store: Path, cli: InProcessCli) -> None:
    create(store, *[(item_id, f"about {item_id}") for item_id in IDS])
    sync_store(store)
    result = cli("item", "list")
    assert result == (0, "".join(f"{item_id}\n" for item_id in sorted(IDS)), "")


def test_list_json_is_an_array_and_nl_one_object_per_line(store: Path, cli: InProcessCli) -> None:
    create(store, *[(item_id, f"about {item_id}") for item_id in IDS])
    sync_store(store)
    array = cli("item", "list", "--json")
    assert array.code == 0
    records = json.loads(array.out)
    assert [record["item_id"] for record in records] == sorted(IDS)
    assert all(record["description"] == f"about {record['item_id']}" for record in records)
    assert set(records[0]) == {
        "item_id",
        "description",
        "version",
        "deleted",
        "created_at",
        "updated_at",
        "position",
    }

    lines = cli("item", "list", "--nl")
    assert lines.code == 0
    assert [json.loads(line) for line in lines.out.splitlines()] == records

    assert cli("item", "list", "--json", "--prefix", "nothing") == (0, "[]\n", "")
    assert cli("item", "list", "--nl", "--prefix", "nothing") == (0, "", "")


def test_list_limit(store: Path, cli: InProcessCli) -> None:
    create(store, *[(item_id, "") for item_id in IDS])
    sync_store(store)
    assert cli("item", "list", "--limit", "3").out.splitlines() == sorted(IDS)[:3]
    assert cli("item", "list", "--limit", "0") == (0, "", "")
    assert cli("item", "list", "--limit", "1000").out.splitlines() == sorted(IDS)
    assert cli("item", "list", "--limit", "-1").code == 2


PREFIX_IDS = [
    *("5", "50", "500", "50%", "50%_off", "50%x", "50_a", "50a", "5_0", "a%b", "a_b"),
    *("é", "éa", "f", "\ud7ff", "\ud7ffx", "\ue000", "z\U0010ffff", "z\U0010ffffa", "{"),
]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("50%", ["50%", "50%_off", "50%x"]),
        ("50%_", ["50%_off"]),
        ("50_", ["50_a"]),
        ("5_", ["5_0"]),
        ("a%", ["a%b"]),
        ("a_", ["a_b"]),
        ("50", ["50", "50%", "50%_off", "50%x", "500", "50_a", "50a"]),
        ("%", []),
        ("_", []),
        ("zzz", []),
        ("50%_off!", []),
        ("é", ["é", "éa"]),
        ("\ud7ff", ["\ud7ff", "\ud7ffx"]),
        ("z\U0010ffff", ["z\U0010ffff", "z\U0010ffffa"]),
        ("z", ["z\U0010ffff", "z\U0010ffffa"]),
    ],
)
def test_list_prefix_is_literal_text(
    store: Path, cli: InProcessCli, prefix: str, expected: list[str]
) -> None:
    create(store, *[(item_id, "") for item_id in PREFIX_IDS])
    sync_store(store)
    result = cli("item", "list", "--prefix", prefix)
    assert result == (0, "".join(f"{item_id}\n" for item_id in expected), "")


def test_list_leaves_out_deleted_items_unless_asked(store: Path, cli: InProcessCli) -> None:
    create(store, ("a", "1"), ("b", "2"), ("c", "3"))
    with CommandService(store) as commands:
        commands.delete_item("b")
    sync_store(store)
    assert cli("item", "list").out == "a\nc\n"
    assert cli("item", "list", "--include-deleted").out == "a\nb\nc\n"
    records = json.loads(cli("item", "list", "--include-deleted", "--json").out)
    assert [(r["item_id"], r["deleted"]) for r in records] == [
        ("a", False),
        ("b", True),
        ("c", False),
    ]


def test_keyset_pagination_with_after_visits_every_item_exactly_once(
    store: Path, cli: InProcessCli
) -> None:
    ids = [f"id-{n:03d}" for n in range(23)] + ["id-%", "id-_", "id-é"]
    create(store, *[(item_id, "") for item_id in reversed(ids)])
    with CommandService(store) as commands:
        commands.delete_item("id-007")
    sync_store(store)
    live = sorted(set(ids) - {"id-007"})

    seen: list[str] = []
    pages = 0
    while True:
        after = ["--after", seen[-1]] if seen else []
        page = cli("item", "list", "--limit", "4", *after)
        assert page.code == 0
        if not page.out:
            break
        seen += page.out.splitlines()
        pages += 1
    assert seen == live
    assert pages == -(-len(live) // 4)
    # `after` need not be an existing id.
    assert cli("item", "list", "--after", "id-0205").out.splitlines()[0] == "id-021"
    assert cli("item", "list", "--after", "id-é").out == ""


# item history


def test_history_prints_tab_separated_changes_oldest_first(store: Path, cli: InProcessCli) -> None:
    with CommandService(store) as commands:
        commands.create_item("Item1", "first")
        commands.create_item("Other", "not this one")
        commands.update_item("Item1", "second\tline\nbreak")
        commands.delete_item("Item1")
        commands.create_item("Item1", "again")
    sync_store(store)
    events = [e for e in journal_events(store / "journal.db") if e.stream_id == "Item1"]

    result = cli("item", "history", "Item1")
    assert result.code == 0
    assert result.err == ""
    rows = [line.split("\t") for line in result.out.splitlines()]
    assert rows == [
        ["1", "ItemCreated", events[0].recorded_at, "1", "first"],
        ["2", "ItemUpdated", events[1].recorded_at, "3", "second\\x09line\\x0abreak"],
        ["3", "ItemDeleted", events[2].recorded_at, "4", ""],
        ["4", "ItemCreated", events[3].recorded_at, "5", "again"],
    ]


def test_history_json(store: Path, cli: InProcessCli) -> None:
    seed(store)
    result = cli("item", "history", "Item1", "--json")
    assert result.code == 0
    created, updated = journal_events(store / "journal.db")
    assert json.loads(result.out) == [
        {
            "position": 1,
            "item_id": "Item1",
            "version": 1,
            "event_type": "ItemCreated",
            "description": "",
            "recorded_at": created.recorded_at,
        },
        {
            "position": 2,
            "item_id": "Item1",
            "version": 2,
            "event_type": "ItemUpdated",
            "description": "Updated Description",
            "recorded_at": updated.recorded_at,
        },
    ]
    assert cli("item", "history", "Nope").code == 3


# item search

SEARCHABLE = [
    ("Item1", "Blue widget"),
    ("Item2", "red gadget"),
    ("order-42", "salt AND pepper"),
    ("Item4", 'say "hi" now: NEAR(x) a-b *star* OR not'),
]


def found(result: Output) -> list[str]:
    assert result.code == 0, result
    return sorted(line.split(":", 1)[0] for line in result.out.splitlines())


def test_search_finds_words_in_descriptions_and_ids(store: Path, cli: InProcessCli) -> None:
    create(store, *SEARCHABLE)
    sync_store(store)
    assert cli("item", "search", "widget") == (0, "Item1: Blue widget\n", "")
    assert found(cli("item", "search", "BLUE Widget")) == ["Item1"]
    assert found(cli("item", "search", "Item2")) == ["Item2"]
    assert found(cli("item", "search", "order-42")) == ["order-42"]
    assert found(cli("item", "search", "gadget widget")) == []
    records = json.loads(cli("item", "search", "gadget", "--json").out)
    assert [(r["item_id"], r["description"]) for r in records] == [("Item2", "red gadget")]
    assert cli("item", "search", "gadget", "--nl").out.count("\n") == 1


def test_search_matches_words_by_their_start(store: Path, cli: InProcessCli) -> None:
    create(store, *SEARCHABLE)
    sync_store(store)
    assert found(cli("item", "search", "blu wid")) == ["Item1"]
    assert found(cli("item", "search", "gad")) == ["Item2"]
    assert found(cli("item", "search", "ord")) == ["order-42"]  # in the id
    assert found(cli("item", "search", "idget")) == []  # a word's start, not its inside


@pytest.mark.parametrize(
    "text",
    ["AND", "OR", "NOT", '"', '"hi', "*", "star*", "NEAR(", "NEAR(x", "-", ":", "now:", "a-b"],
)
def test_search_takes_fts_syntax_as_literal_text(store: Path, cli: InProcessCli, text: str) -> None:
    create(store, *SEARCHABLE)
    sync_store(store)
    result = cli("item", "search", "--", text)
    assert result.code == 0
    assert result.err == ""


def test_search_matches_operator_words_as_plain_words(store: Path, cli: InProcessCli) -> None:
    create(store, *SEARCHABLE)
    sync_store(store)
    assert found(cli("item", "search", "AND")) == ["order-42"]
    assert found(cli("item", "search", "salt AND")) == ["order-42"]
    assert found(cli("item", "search", "salt OR red")) == []
    assert found(cli("item", "search", "NEAR(x)")) == ["Item4"]
    assert found(cli("item", "search", '"hi"')) == ["Item4"]


def test_search_with_fts_takes_the_full_text_syntax(store: Path, cli: InProcessCli) -> None:
    create(store, *SEARCHABLE)
    sync_store(store)
    assert found(cli("item", "search", "--fts", "blue OR red")) == ["Item1", "Item2"]
    assert found(cli("item", "search", "--fts", "wid*")) == ["Item1"]
    assert found(cli("item", "search", "--fts", "salt NOT pepper")) == []
    assert found(cli("item", "search", "--fts", '"red gadget"')) == ["Item2"]


@pytest.mark.parametrize(
    "query",
    [
        "NEAR(",
        "AND",
        "a OR",
        '"unbalanced',
        "colour:red",
        "item_id:",
    ],
)
def test_a_bad_fts_query_exits_2_with_one_line(store: Path, cli: InProcessCli, query: str) -> None:
    create(store, *SEARCHABLE)
    sync_store(store)
    result = cli("item", "search", "--fts", query)
    assert (result.code, result.out) == (2, "")
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("cqrs: error: invalid full-text query")


def test_search_needs_words(store: Path, cli: InProcessCli) -> None:
    create(store, *SEARCHABLE)
    sync_store(store)
    result = cli("item", "search", "   ")
    assert result.code == 2
    assert len(result.err.splitlines()) == 1


# status


def test_status_shows_head_checkpoints_lag_and_belonging(store: Path, cli: InProcessCli) -> None:
    seed(store)
    create(store, ("Item2", "not synced yet"))
    result = cli("status")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == f"journal:     {store / 'journal.db'} (head position 3)"
    assert lines[1] == f"projection:  {store / 'projection.db'} (built from this journal)"
    assert lines[2].startswith("last sync:   20")
    versions = {"item_history": 1, "item_search": 3, "items": 2}
    assert lines[3:] == [
        *(
            f"view {view:<13} version {version}  checkpoint 2  lag 1"
            for view, version in versions.items()
        ),
        "catch-up:    off (CQRS_CATCHUP=0)",  # the suite turns it off (conftest.py)
    ]

    status = json.loads(cli("status", "--json").out)
    assert status["journal_head"] == 3
    assert status["belongs"] is True
    assert status["projection_exists"] is True
    assert status["journal_id"] == status["projection_journal_id"]
    assert [(v["view"], v["version"], v["checkpoint"], v["lag"]) for v in status["views"]] == [
        (view, version, 2, 1) for view, version in versions.items()
    ]


def test_status_before_any_sync(store: Path, cli: InProcessCli) -> None:
    create(store, ("Item1", ""))
    result = cli("status")
    assert result.code == 0
    assert result.out.splitlines()[1] == (
        f"projection:  {store / 'projection.db'} (none yet: run `cqrs sync`)"
    )
    status = json.loads(cli("status", "--json").out)
    assert (status["journal_head"], status["projection_exists"], status["views"]) == (1, False, [])
    assert not (store / "projection.db").exists()


# Freshness: the stale note, --sync, --min-position

STALE_READS = [
    ("item", "get", "Item1"),
    ("item", "list"),
    ("item", "history", "Item1"),
    ("item", "search", "Description"),
]


@pytest.mark.parametrize("argv", STALE_READS, ids=lambda argv: argv[1])
def test_a_read_behind_the_journal_says_so_in_one_line_and_q_silences_it(
    store: Path, cli: InProcessCli, argv: tuple[str, ...]
) -> None:
    seed(store)
    create(store, ("Item2", "unsynced"))
    result = cli(*argv)
    assert result.code == 0
    assert result.out
    assert len(result.err.splitlines()) == 1
    assert "behind the journal" in result.err
    assert "position 2 of 3" in result.err

    assert cli("-q", *argv) == result._replace(err="")
    assert cli(*argv, "-q") == result._replace(err="")
    assert cli(*argv, "--quiet") == result._replace(err="")


@pytest.mark.parametrize("argv", STALE_READS, ids=lambda argv: argv[1])
def test_sync_on_a_read_reads_your_writes(
    store: Path, cli: InProcessCli, argv: tuple[str, ...]
) -> None:
    seed(store)
    with CommandService(store) as commands:
        commands.update_item("Item1", "Newer Description")
    result = cli(*argv, "--sync")
    assert result.code == 0
    assert result.err == ""
    if argv[1] in ("get", "history"):
        assert "Newer Description" in result.out


def test_sync_on_writes_makes_the_next_read_current(store: Path, cli: InProcessCli) -> None:
    assert cli("item", "create", "X", "-d", "made", "--sync").code == 0
    assert cli("item", "get", "X") == (0, "X: made\n", "")
    assert cli("item", "update", "X", "changed", "--sync").code == 0
    assert cli("item", "get", "X") == (0, "X: changed\n", "")
    assert cli("item", "delete", "X", "--sync").code == 0
    assert cli("item", "get", "X").code == 3
    assert cli("item", "list") == (0, "", "")


def test_min_position_returns_when_reached_and_exits_5_when_not(
    store: Path, cli: InProcessCli
) -> None:
    seed(store)
    assert cli("item", "get", "Item1", "--min-position", "2", "--wait", "0") == (
        0,
        "Item1: Updated Description\n",
        "",
    )
    assert cli("item", "list", "--min-position", "1", "--wait", "0").out == "Item1\n"

    position = create(store, ("Item2", "later"))
    for argv in (("item", "get", "Item2"), ("item", "list")):
        result = cli(*argv, "--min-position", str(position), "--wait", "0.3")
        assert (result.code, result.out) == (5, "")
        assert len(result.err.splitlines()) == 1
        assert f"not {position}" in result.err

    result = cli("item", "get", "Item2", "--min-position", str(position), "--sync")
    assert result == (0, "Item2: later\n", "")


def test_min_position_waits_for_a_sync_done_by_someone_else(store: Path, cli: InProcessCli) -> None:
    import threading

    seed(store)
    position = create(store, ("Item2", "later"))
    other = threading.Timer(0.3, QueryService(store).sync)
    other.start()
    try:
        result = cli("item", "get", "Item2", "--min-position", str(position), "--wait", "60")
    finally:
        other.join()
    assert result == (0, "Item2: later\n", "")


# Stores without a projection


@pytest.mark.parametrize("argv", STALE_READS, ids=lambda argv: argv[1])
def test_a_journal_without_projection_exits_5_with_a_hint_and_creates_nothing(
    store: Path, cli: InProcessCli, argv: tuple[str, ...]
) -> None:
    create(store, ("Item1", "Description"))
    result = cli(*argv)
    assert (result.code, result.out) == (5, "")
    assert "cqrs sync" in result.err.splitlines()[-1]
    assert str(store / "projection.db") in result.err
    assert not [path for path in store.iterdir() if path.name.startswith("projection")]


def test_an_empty_store_reads_as_empty_and_creates_nothing(store: Path, cli: InProcessCli) -> None:
    assert cli("item", "list") == (0, "", "")
    assert cli("item", "list", "--json") == (0, "[]\n", "")
    assert cli("item", "search", "anything") == (0, "", "")
    get = cli("item", "get", "X")
    assert (get.code, get.out, get.err) == (3, "", "cqrs: error: item 'X' does not exist\n")
    assert cli("item", "history", "X").code == 3
    assert cli("status").code == 0
    assert not store.exists()


# Files a read refuses


def text_file(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("SQLite format 3 is not what this is\n")
    return path


def empty_file(folder: Path) -> Path:
    path = folder / "empty.db"
    path.touch()
    return path


def directory(folder: Path) -> Path:
    path = folder / "a-folder"
    path.mkdir()
    return path


def journal_file(folder: Path) -> Path:
    other = StorePaths(str(folder / "other-journal.db"), str(folder / "other-projection.db"))
    create(other, ("Other", "from another store"))
    return Path(other.journal)


def newer_projection(folder: Path) -> Path:
    paths = StorePaths(str(folder / "j.db"), str(folder / "newer.db"))
    create(paths, ("Item1", ""))
    sync_store(paths)
    conn = sqlite3.connect(paths.projection)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    return Path(paths.projection)


def snapshot(path: Path) -> object:
    if path.is_dir():
        return sorted(path.iterdir())
    return path.read_bytes()


@pytest.mark.parametrize("make", [text_file, empty_file, directory, journal_file, newer_projection])
@pytest.mark.parametrize(
    "argv",
    [*STALE_READS, ("status",), ("item", "list", "--sync"), ("sync",)],
    ids=lambda argv: "-".join(argv[1:] or argv),
)
def test_a_file_that_is_not_a_usable_projection_exits_7_and_is_left_untouched(
    store: Path, tmp_path: Path, cli: InProcessCli, make: object, argv: tuple[str, ...]
) -> None:
    assert callable(make)
    seed(store)
    folder = tmp_path / "wrong"
    folder.mkdir()
    wrong = make(folder)
    assert isinstance(wrong, Path)
    before = snapshot(wrong)
    others = sorted(folder.iterdir())

    result = cli("--projection", str(wrong), *argv)
    assert (result.code, result.out) == (7, "")
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith(f"cqrs: error: {wrong}: ")
    assert snapshot(wrong) == before
    assert sorted(folder.iterdir()) == others


@pytest.mark.parametrize("argv", [*STALE_READS, ("status",), ("sync",)], ids=str)
def test_the_same_file_as_journal_and_projection_is_a_usage_error(
    store: Path, cli: InProcessCli, argv: tuple[str, ...]
) -> None:
    seed(store)
    journal = store / "journal.db"
    before = journal.read_bytes()
    for projection in (journal, store / ".." / store.name / "journal.db"):
        result = cli("--journal", str(journal), "--projection", str(projection), *argv)
        assert (result.code, result.out) == (2, "")
        assert len(result.err.splitlines()) == 1
        assert "must be different files" in result.err
    assert journal.read_bytes() == before


# Hostile text

HOSTILE = "\x1b[2J[bold]x[/] \x1b]8;;http://example.com\x07link\x1b]8;;\x07 \u202eevil"


def test_stored_control_characters_never_reach_the_terminal(
    store: Path, cli: InProcessCli, cqrs_exe: str
) -> None:
    create(store, ("Item1", HOSTILE))
    sync_store(store)
    for argv in (
        ("item", "get", "Item1"),
        ("item", "history", "Item1"),
        ("item", "search", "link"),
    ):
        result = cli(*argv)
        assert result.code == 0
        assert "\x1b" not in result.out
        assert "\x07" not in result.out
        assert "\u202e" not in result.out
        assert "[bold]x[/]" in result.out
    assert cli("item", "get", "Item1").out == (
        "Item1: \\x1b[2J[bold]x[/] \\x1b]8;;http://example.com\\x07link\\x1b]8;;\\x07 \\u202eevil\n"
    )

    raw = run_cqrs(cqrs_exe, "item", "get", "Item1", text=True)
    assert raw.returncode == 0
    assert "\x1b" not in raw.stdout
    assert "[bold]x[/]" in raw.stdout


def test_json_output_round_trips_hostile_text_exactly(store: Path, cli: InProcessCli) -> None:
    create(store, ("Item1", HOSTILE), ("[red]id[/]", "plain"))
    sync_store(store)
    result = cli("item", "get", "Item1", "--json")
    assert "\x1b" not in result.out
    assert "\u202e" not in result.out
    assert json.loads(result.out)["description"] == HOSTILE
    listed = json.loads(cli("item", "list", "--json").out)
    assert {r["item_id"]: r["description"] for r in listed} == {
        "Item1": HOSTILE,
        "[red]id[/]": "plain",
    }
    history = cli("item", "history", "Item1", "--nl").out
    assert json.loads(history)["description"] == HOSTILE


# Each run() is a fresh command line


def test_run_does_not_keep_quiet_from_an_earlier_call(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(store)
    assert run(["-q", "item", "get", "Item1"]) == 0
    create(store, ("Item2", "unsynced"))
    capsys.readouterr()
    assert run(["item", "list"]) == 0
    out, err = capsys.readouterr()
    assert out == "Item1\n"
    assert "behind the journal" in err


def test_run_does_not_keep_the_store_of_an_earlier_call(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(store)
    other = tmp_path / "other-home"
    create(other, ("Other", ""))
    sync_store(other)
    assert run(["--home", str(other), "item", "list"]) == 0
    assert capsys.readouterr().out == "Other\n"
    assert run(["item", "list"]) == 0
    assert capsys.readouterr().out == "Item1\n"


def other_journals_projection(store: Path, tmp_path: Path) -> list[str]:
    """Global options pointing the store's (longer) journal at a projection that was
    built from another journal."""
    seed(store)
    create(store, ("Item2", ""), ("Item3", ""))
    other = StorePaths(str(tmp_path / "other" / "journal.db"), str(tmp_path / "other" / "p.db"))
    create(other, ("Other", "elsewhere"))
    sync_store(other)
    return ["--projection", other.projection]


@pytest.mark.parametrize(
    "argv",
    [("item", "list"), ("item", "search", "elsewhere")],
    ids=lambda argv: argv[1],
)
def test_a_read_of_another_journals_projection_exits_7_with_one_line(
    store: Path, tmp_path: Path, cli: InProcessCli, argv: tuple[str, ...]
) -> None:
    options = other_journals_projection(store, tmp_path)
    result = cli(*options, *argv)
    assert (result.code, result.out) == (7, "")
    assert len(result.err.splitlines()) == 1
    assert "projection of another journal" in result.err
    assert "cqrs sync" in result.err


@pytest.mark.parametrize(
    "argv",
    [("item", "get", "Other"), ("item", "history", "Other")],
    ids=lambda argv: argv[1],
)
def test_get_and_history_of_another_journals_projection_exit_7_with_one_line(
    store: Path, tmp_path: Path, cli: InProcessCli, argv: tuple[str, ...]
) -> None:
    options = other_journals_projection(store, tmp_path)
    result = cli(*options, *argv)
    assert (result.code, result.out) == (7, "")
    assert "projection of another journal" in result.err
    assert len(result.err.splitlines()) == 1, result.err


def test_get_and_history_find_an_id_typed_in_another_unicode_form(
    store: Path, cli: InProcessCli
) -> None:
    create(store, ("caf\u00e9", "precomposed"))  # stored in NFC
    sync_store(store)
    decomposed = "cafe\u0301"
    assert cli("item", "get", decomposed) == (0, "caf\u00e9: precomposed\n", "")
    assert cli("item", "history", decomposed).code == 0


def test_list_prefix_and_after_match_ids_typed_in_another_unicode_form(
    store: Path, cli: InProcessCli
) -> None:
    create(store, ("caf\u00e9-1", ""), ("caf\u00e9-2", ""), ("cafe-3", ""))
    sync_store(store)
    assert cli("item", "list", "--prefix", "cafe\u0301").out == "caf\u00e9-1\ncaf\u00e9-2\n"
    assert cli("item", "list", "--after", "cafe\u0301-1").out == "caf\u00e9-2\n"


def test_a_read_with_a_mistyped_journal_path_says_it_cannot_tell_freshness(
    store: Path, cli: InProcessCli
) -> None:
    CommandService(store).create_item("Item1", "x")
    QueryService(store).sync()
    result = cli("--journal", str(store / "typo.db"), "item", "get", "Item1")
    assert result.code == 0
    assert result.out == "Item1: x\n"
    assert result.err == (
        f"cqrs: note: no journal at {store / 'typo.db'}: cannot tell whether the projection "
        "is current (is --journal right?)\n"
    )
    assert not (store / "typo.db").exists()
