"""A catch-up applies each batch one of two ways (sync/apply.py): in SQL, straight from
the journal's file attached to the projection (a large catch-up), or in Python through
the views' `apply` (a small one, a journal without a file, a batch with events to
upcast or data SQL cannot read). Whatever the journal holds (creates, updates,
deletes, re-creates, multi-line and non-ASCII text) and however it is cut in batches,
the two give the same projection: row for row, token for token in the search index,
and the same answers to searches."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from unittest import mock

import pytest
from common import child_env, read_only, run_cqrs
from projection_helpers import (
    Dump,
    assert_projection_is_exact,
    assert_same_dump,
    checkpoint_of,
    copy_of_random_journal,
    dump_projection,
    write_random_events,
)

from cqrs_cli import CommandService, StorePaths
from cqrs_cli.errors import StorageError
from cqrs_cli.journal.memory_journal import MemoryJournal
from cqrs_cli.journal.sqlite_journal import SqliteJournal
from cqrs_cli.sync import apply as sync_apply
from cqrs_cli.sync import runner
from cqrs_cli.sync.runner import Syncer
from cqrs_cli.views import registry
from cqrs_cli.views.base import View

# Text that SQL's json_extract and Python's json.loads must read alike.
TEXTS = [
    "first line\nsecond line\n\tindented",
    "Ünïcödé façade, naïve café; 東京 and Ελληνικά",
    'quotes " and \\ backslashes \\" and /slashes/',
    "emoji 🚀🎉 and a zero-width\u200bjoiner",
    "[b]not markup[/b] \x1b[2J",
    "",
    "  leading and trailing spaces  ",
]
QUERIES = ["item", "description", "created", "line", "cafe", "東京", "🚀", "façade", "quotes"]


class Paths:
    """Counts how many batches went each way."""

    def __init__(self) -> None:
        self.in_sql = 0
        self.in_python = 0


@pytest.fixture
def ways(monkeypatch: pytest.MonkeyPatch) -> Iterator[Paths]:
    counts = Paths()
    ranges, batch = sync_apply._apply_ranges, sync_apply.apply_batch

    def counted_ranges(*args: object) -> bool:
        done = ranges(*args)  # type: ignore[arg-type]
        counts.in_sql += done
        return done

    def counted_batch(*args: object) -> list[str]:
        counts.in_python += 1
        return batch(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sync_apply, "_apply_ranges", counted_ranges)
    monkeypatch.setattr(sync_apply, "apply_batch", counted_batch)
    yield counts


def sync(paths: StorePaths, *, in_sql: bool, batch_size: int = 2000, **kwargs: object) -> None:
    """A sync whose catch-up goes in SQL whatever its size (`in_sql`), or never does."""
    with (
        mock.patch.object(runner, "SQL_CATCH_UP_MIN", 0 if in_sql else 10**12),
        Syncer(paths, batch_size=batch_size, **kwargs) as syncer,  # type: ignore[arg-type]
    ):
        syncer.run()


def write_texts(journal: Path, round_: int) -> None:
    """Creates, updates, deletes and re-creates with the awkward TEXTS."""
    with CommandService(StorePaths(str(journal), str(journal) + ".unused")) as service:
        for number, text in enumerate(TEXTS):
            item_id = f"text-{round_}-{number}"
            service.create_item(item_id, text)
            service.update_item(item_id, TEXTS[(number + 1) % len(TEXTS)])
            if number % 3 == 0:
                service.delete_item(item_id)
                if number % 2 == 0:
                    service.create_item(item_id, text + " again")
        if round_ > 0:
            # An item of an earlier round, deleted there, is created again here.
            service.create_item(f"text-{round_ - 1}-3", "back from the dead")


def searches(projection: Path) -> list[list[object]]:
    """What each of QUERIES finds, best first (rank included)."""
    with closing(read_only(projection)) as conn:
        return [
            conn.execute(
                "SELECT rowid, rank FROM item_search WHERE item_search MATCH ? "
                "ORDER BY rank, rowid",
                ('"' + query + '"*',),
            ).fetchall()
            for query in QUERIES
        ]


def assert_same_projection(actual: Path, expected: Path) -> Dump:
    dump = dump_projection(expected)
    assert_same_dump(dump_projection(actual), dump)
    assert searches(actual) == searches(expected)
    return dump


@pytest.mark.parametrize("batch_size", [1, 7, 500, 2000])
def test_sql_and_python_catch_ups_give_the_same_projection(
    tmp_path: Path, ways: Paths, batch_size: int
) -> None:
    journal = copy_of_random_journal(tmp_path / "journal.db", 1500, items=40, seed=11)
    in_sql = StorePaths(str(journal), str(tmp_path / "sql.db"))
    in_python = StorePaths(str(journal), str(tmp_path / "python.db"))
    sync(in_sql, in_sql=True)  # the first sync: a build in bulk, for both
    sync(in_python, in_sql=False)
    for round_ in range(3):
        write_random_events(journal, 400, items=40, seed=200 + round_)
        write_texts(journal, round_)
        before = ways.in_python
        sync(in_sql, in_sql=True, batch_size=batch_size)
        assert ways.in_python == before, "a batch of the SQL catch-up went through Python"
        sync(in_python, in_sql=False, batch_size=batch_size)
        assert ways.in_python > before
        assert_same_projection(Path(in_sql.projection), Path(in_python.projection))
    assert ways.in_sql > 0
    assert_projection_is_exact(journal, in_sql.projection, tmp_path)


def test_a_catch_up_below_the_threshold_stays_in_python_and_above_goes_in_sql(
    tmp_path: Path, ways: Paths
) -> None:
    journal = copy_of_random_journal(tmp_path / "journal.db", 200, items=40, seed=12)
    paths = StorePaths(str(journal), str(tmp_path / "projection.db"))
    with Syncer(paths) as syncer:
        syncer.run()
        write_random_events(journal, sync_apply.SQL_CATCH_UP_MIN - 1, items=40, seed=13)
        syncer.run()
        assert (ways.in_sql, ways.in_python) == (0, 1)
        write_random_events(journal, sync_apply.SQL_CATCH_UP_MIN, items=40, seed=14)
        syncer.run()
        assert (ways.in_sql, ways.in_python) == (1, 1)
    assert_projection_is_exact(journal, paths.projection, tmp_path)


def test_a_batch_with_events_to_upcast_goes_through_python(tmp_path: Path, ways: Paths) -> None:
    journal = copy_of_random_journal(tmp_path / "journal.db", 300, items=40, seed=15)
    paths = StorePaths(str(journal), str(tmp_path / "projection.db"))
    sync(paths, in_sql=True)
    write_random_events(journal, 600, items=40, seed=16)
    # As when some event of the batch is stored at an older schema version.
    with mock.patch("cqrs_cli.sync.bulk.current", return_value=False):
        sync(paths, in_sql=True, batch_size=250)
    assert (ways.in_sql, ways.in_python) == (0, 3)
    assert_projection_is_exact(journal, paths.projection, tmp_path)


def test_views_at_different_checkpoints_are_caught_up_through_python(
    tmp_path: Path, ways: Paths
) -> None:
    journal = copy_of_random_journal(tmp_path / "journal.db", 300, items=40, seed=17)
    paths = StorePaths(str(journal), str(tmp_path / "projection.db"))
    sync(paths, in_sql=True)
    write_random_events(journal, 600, items=40, seed=18)
    with closing(sqlite3.connect(paths.projection)) as conn, conn:
        # As if item_history had been 100 events behind the other views (the projection
        # records the hash of the event at the lowest checkpoint).
        (head,) = conn.execute("SELECT MAX(position) FROM item_history").fetchone()
        with closing(read_only(journal)) as source:
            query = "SELECT hash FROM events WHERE position = ?"
            (digest,) = source.execute(query, (head - 100,)).fetchone()
        conn.execute("DELETE FROM item_history WHERE position > ?", (head - 100,))
        conn.execute(
            "UPDATE projection_views SET checkpoint = ? WHERE view = 'item_history'",
            (head - 100,),
        )
        conn.execute(
            "UPDATE projection_meta SET value = ? WHERE key = 'checkpoint_hash'", (digest,)
        )
    sync(paths, in_sql=True, batch_size=100)
    # The first batch brings item_history level with the others; the rest go in SQL.
    assert (ways.in_sql, ways.in_python) == (6, 1)
    assert_projection_is_exact(journal, paths.projection, tmp_path)


def test_a_view_without_a_range_apply_keeps_the_catch_up_in_python(
    tmp_path: Path, ways: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = copy_of_random_journal(tmp_path / "journal.db", 300, items=40, seed=19)
    paths = StorePaths(str(journal), str(tmp_path / "projection.db"))
    sync(paths, in_sql=True)
    write_random_events(journal, 600, items=40, seed=20)
    *views, search = registry.views()
    without = View(
        search.name,
        search.version,
        create=search.create,
        drop=search.drop,
        apply=search.apply,
        build=search.build,
        depends_on=search.depends_on,
    )
    monkeypatch.setattr(registry, "_VIEWS", [*views, without])
    sync(paths, in_sql=True)
    assert (ways.in_sql, ways.in_python) == (0, 1)
    assert_projection_is_exact(journal, paths.projection, tmp_path)


def test_a_journal_without_a_file_is_caught_up_through_python(tmp_path: Path, ways: Paths) -> None:
    source = copy_of_random_journal(tmp_path / "journal.db", 3000, items=40, seed=21)
    memory = MemoryJournal()
    with closing(SqliteJournal.open(str(source), create=False, readonly=True)) as opened:
        events = opened.read_all(after=0, limit=10_000)
    half = len(events) // 2
    memory._commit(events[:half], {})  # the same events, positions and all
    in_memory = StorePaths(str(tmp_path / "absent.db"), str(tmp_path / "memory.db"))
    sync(in_memory, in_sql=True, journal=memory)
    memory._commit(events[half:], {})
    sync(in_memory, in_sql=True, journal=memory)
    assert ways.in_sql == 0 and ways.in_python > 0
    sync(StorePaths(str(source), str(tmp_path / "sql.db")), in_sql=True)
    dump = dump_projection(tmp_path / "memory.db")
    expected = dump_projection(tmp_path / "sql.db")
    assert {k: v for k, v in dump.items() if k != "journal_id"} == {
        k: v for k, v in expected.items() if k != "journal_id"
    }


def test_data_sql_cannot_read_falls_back_to_python_which_names_the_event(
    tmp_path: Path, ways: Paths
) -> None:
    journal = copy_of_random_journal(tmp_path / "journal.db", 300, items=40, seed=22)
    paths = StorePaths(str(journal), str(tmp_path / "projection.db"))
    sync(paths, in_sql=True)
    write_random_events(journal, 300, items=40, seed=23)
    with closing(sqlite3.connect(journal)) as conn, conn:
        # A description that is not text (the hash chain is not what sync checks).
        conn.execute(
            "INSERT INTO events (event_id, stream_id, stream_version, event_type, "
            "schema_version, data, recorded_at, command_id, prev_hash, hash) "
            "VALUES ('bad-event', 'odd', 1, 'ItemCreated', 1, '{\"description\": 5}', "
            "'2026-01-01T00:00:00.000000Z', 'bad-command', '', '')"
        )
    checkpoint = checkpoint_of(paths.projection)
    refused = "undecodable ItemCreated event in stream 'odd': description is not a string"
    for in_sql in (True, False):
        with pytest.raises(StorageError, match=refused):
            sync(paths, in_sql=in_sql)
        assert checkpoint_of(paths.projection) == checkpoint  # the batch was rolled back
    assert ways.in_sql == 0 and ways.in_python == 2
    # A first build in SQL finds it too (the column's TEXT affinity would have stored
    # the number as the text '5'), and replays, which names the event.
    with pytest.raises(StorageError, match=refused):
        sync(StorePaths(str(journal), str(tmp_path / "new.db")), in_sql=True)


def test_a_sql_catch_up_killed_mid_way_keeps_its_committed_batches_and_resumes(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    journal = store / "journal.db"
    write_random_events(journal, 50, items=40, seed=24)
    assert run_cqrs(cqrs_exe, "sync").returncode == 0
    write_random_events(journal, 2_000, items=40, seed=25)  # a catch-up in SQL
    for point, committed in (("mid-batch:2", 550), ("before-commit:3", 1550)):
        env = child_env(CQRS_TEST_CRASH_AT=point)
        crashed = run_cqrs(cqrs_exe, "sync", "--batch-size", "500", env=env, text=True)
        assert crashed.returncode == -9
        assert checkpoint_of(store / "projection.db") == committed
        write_random_events(journal, 500, items=40, seed=26 + committed)
    resumed = run_cqrs(cqrs_exe, "sync", "--batch-size", "500", text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "Synced 1500 events (position 1550 -> 3050)\n"
    assert_projection_is_exact(journal, store / "projection.db", tmp_path)


def test_a_journal_file_that_cannot_be_attached_is_caught_up_through_python(
    tmp_path: Path, ways: Paths
) -> None:
    journal = copy_of_random_journal(tmp_path / "journal.db", 300, items=40, seed=27)
    paths = StorePaths(str(journal), str(tmp_path / "projection.db"))
    sync(paths, in_sql=True)
    write_random_events(journal, 600, items=40, seed=28)
    refused = sqlite3.OperationalError("unable to open database file")
    with mock.patch("cqrs_cli.sync.bulk.attach", side_effect=refused):
        sync(paths, in_sql=True)
    assert (ways.in_sql, ways.in_python) == (0, 1)
    assert_projection_is_exact(journal, paths.projection, tmp_path)
