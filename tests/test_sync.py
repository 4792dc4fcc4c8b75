"""`cqrs sync` as a user sees it: the summary, --json, --rebuild (readers keep the old
projection until it commits), rebuilds it decides on itself and says why, --follow,
and a store with nothing in it yet."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from common import (
    InProcessCli,
    LineReader,
    child_env,
    python_child,
    read_only,
    run_cqrs,
    wait_until,
)
from projection_helpers import (
    assert_projection_is_exact,
    checkpoint_of,
    copy_of_random_journal,
    dump_projection,
    journal_events,
)

from cqrs_cli import CommandService, QueryService, StorePaths
from cqrs_cli.sync import runner
from cqrs_cli.sync.runner import Syncer
from cqrs_cli.views import items, registry

pytestmark = pytest.mark.usefixtures("fresh_cli_state")


def write(store: Path | StorePaths, count: int, prefix: str = "Item") -> None:
    """`count` creates, then an update and a delete, as a user would make them."""
    with CommandService(store) as commands:
        for n in range(1, count + 1):
            commands.create_item(f"{prefix}{n}", f"description of {prefix}{n}")
        commands.update_item(f"{prefix}1", "Updated Description")
        commands.delete_item(f"{prefix}{count}")


def test_sync_prints_a_summary_and_a_second_sync_applies_nothing(
    store: Path, cli: InProcessCli, tmp_path: Path
) -> None:
    write(store, 3)
    assert cli("sync") == (0, "Synced 5 events (position 0 -> 5)\n", "")
    assert cli("sync") == (0, "Synced 0 events (position 5 -> 5)\n", "")
    write(store, 2, prefix="More")
    assert cli("sync") == (0, "Synced 4 events (position 5 -> 9)\n", "")
    assert cli("item", "list") == (0, "Item1\nItem2\nMore1\n", "")
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_sync_json_prints_one_object_per_sync(store: Path, cli: InProcessCli) -> None:
    write(store, 2)
    result = cli("sync", "--json")
    assert (result.code, result.err) == (0, "")
    assert result.out.count("\n") == 1
    assert json.loads(result.out) == {
        "applied": 4,
        "start": 0,
        "end": 4,
        "rebuilt": False,
        "reasons": [],
    }
    again = json.loads(cli("sync", "--json").out)
    assert (again["applied"], again["start"], again["end"]) == (0, 4, 4)
    rebuilt = json.loads(cli("sync", "--rebuild", "--json").out)
    assert (rebuilt["applied"], rebuilt["start"], rebuilt["end"], rebuilt["rebuilt"]) == (
        4,
        0,
        4,
        True,
    )


def test_rebuild_gives_the_same_projection(store: Path, cli: InProcessCli, tmp_path: Path) -> None:
    write(store, 4)
    assert cli("sync", "--batch-size", "2").code == 0
    before = dump_projection(store / "projection.db")
    assert cli("sync", "--rebuild") == (0, "Rebuilt from 6 events (position 0 -> 6)\n", "")
    assert dump_projection(store / "projection.db") == before
    write(store, 1, prefix="New")
    assert cli("sync", "--rebuild", "--batch-size", "1") == (
        0,
        "Rebuilt from 9 events (position 0 -> 9)\n",
        "",
    )
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def counts(conn: sqlite3.Connection) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM items), (SELECT COUNT(*) FROM item_history), "
        "(SELECT COUNT(*) FROM item_search)"
    ).fetchone()
    return (row[0], row[1], row[2])


def test_readers_see_the_old_projection_until_a_rebuild_commits(
    store: Path, cqrs_exe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(store, 30)
    QueryService(store).sync()
    write(store, 5, prefix="New")
    projection = store / "projection.db"
    reader = read_only(projection)
    old = counts(reader)
    old_ids = QueryService(store).list_all_items()
    seen: list[object] = []

    def reached(hook: object, point: str) -> None:
        # The test-only crash points (see test_sync_crash.py), here used to look at the
        # projection from outside at the last moment of a rebuild: all of it written,
        # nothing committed yet.
        if point != "rebuild-before-commit":
            return
        seen.append(counts(reader))
        with QueryService(store) as queries:
            seen.append(queries.list_all_items())
        seen.append(run_cqrs(cqrs_exe, "item", "list", text=True).stdout)

    monkeypatch.setattr(runner._CrashHook, "reached", reached)
    with Syncer(StorePaths.coerce(store), batch_size=4) as syncer:
        report = syncer.run(rebuild=True)
    assert (report.rebuilt, report.applied) == (True, 39)
    assert seen == [old, old_ids, "".join(f"{item_id}\n" for item_id in old_ids)]
    assert counts(reader) == (35, 39, 33)
    reader.close()


def test_readers_polling_during_a_rebuild_in_another_process_never_see_a_partial_projection(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    journal = copy_of_random_journal(store / "journal.db", 20_000, items=400)
    QueryService(store).sync()
    projection = store / "projection.db"
    with closing(read_only(projection)) as conn:
        old = counts(conn)
    write(store, 50, prefix="New")
    new = (old[0] + 50, old[1] + 52, old[2] + 49)

    seen: set[tuple[int, int, int]] = set()
    errors: list[BaseException] = []
    rebuilding = threading.Event()
    rebuilding.set()

    def poll(reuse_connection: bool, started: threading.Event) -> None:
        conn = read_only(projection)
        try:
            while rebuilding.is_set():
                if not reuse_connection:
                    conn.close()
                    conn = read_only(projection)
                seen.add(counts(conn))
                started.set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    first_reads = [threading.Event(), threading.Event()]
    readers = [
        threading.Thread(target=poll, args=(reuse, started))
        for reuse, started in zip((True, False), first_reads, strict=True)
    ]
    for reader in readers:
        reader.start()
    try:
        for started in first_reads:
            assert started.wait(timeout=30)
        rebuild = run_cqrs(
            cqrs_exe, "sync", "--rebuild", "--batch-size", "100", timeout=120, text=True
        )
    finally:
        rebuilding.clear()
        for reader in readers:
            reader.join()
    assert errors == []
    assert rebuild.returncode == 0, rebuild.stderr
    assert rebuild.stdout == "Rebuilt from 20052 events (position 0 -> 20052)\n"
    assert old in seen
    assert seen <= {old, new}
    with closing(read_only(projection)) as conn:
        assert counts(conn) == new
    assert_projection_is_exact(journal, projection, tmp_path)


def set_view(projection: Path, sql: str) -> None:
    conn = sqlite3.connect(projection)
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_a_changed_view_version_rebuilds_the_projection_saying_why(
    store: Path, cli: InProcessCli, tmp_path: Path
) -> None:
    write(store, 3)
    cli("sync")
    set_view(store / "projection.db", "UPDATE projection_views SET version = 0 WHERE view='items'")
    assert cli("sync") == (
        0,
        "Rebuilt from 5 events (position 0 -> 5)\n",
        f"Rebuilding the projection: view items changed from version 0 to {items.VERSION}\n",
    )
    assert cli("sync") == (0, "Synced 0 events (position 5 -> 5)\n", "")
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)

    set_view(store / "projection.db", "UPDATE projection_views SET version = 0")
    quiet = cli("-q", "sync", "--json")
    assert (quiet.code, quiet.err) == (0, "")
    assert json.loads(quiet.out)["reasons"] == [
        f"view {view.name} changed from version 0 to {view.version}"
        for view in sorted(registry.views(), key=lambda view: view.name)
    ]


def test_a_view_missing_from_the_projection_is_rebuilt(
    store: Path, cli: InProcessCli, tmp_path: Path
) -> None:
    write(store, 2)
    cli("sync")
    set_view(store / "projection.db", "DELETE FROM projection_views WHERE view = 'item_search'")
    result = cli("sync")
    assert result.code == 0
    assert result.err == "Rebuilding the projection: view item_search is new\n"
    assert result.out == "Rebuilt from 4 events (position 0 -> 4)\n"
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_a_projection_of_another_journal_is_refused_by_reads_and_rebuilt_by_sync(
    tmp_path: Path, cli: InProcessCli
) -> None:
    first = StorePaths(str(tmp_path / "a" / "journal.db"), str(tmp_path / "a" / "projection.db"))
    second = StorePaths(str(tmp_path / "b" / "journal.db"), first.projection)
    write(first, 2, prefix="A")
    write(second, 3, prefix="B")
    options = ("--journal", second.journal, "--projection", second.projection)
    assert cli("--journal", first.journal, "--projection", first.projection, "sync").code == 0
    first_id = json.loads(cli("--journal", first.journal, "status", "--json").out)["journal_id"]
    status = json.loads(cli(*options, "status", "--json").out)
    second_id = status["journal_id"]
    assert status["belongs"] is False
    assert status["projection_journal_id"] == first_id

    read = cli(*options, "item", "list")
    assert (read.code, read.out) == (7, "")
    assert len(read.err.splitlines()) == 1
    assert second.projection in read.err

    assert cli(*options, "sync") == (
        0,
        "Rebuilt from 5 events (position 0 -> 5)\n",
        "Rebuilding the projection: the projection was built from another journal "
        f"({first_id}, this one is {second_id})\n",
    )
    assert cli(*options, "item", "list") == (0, "B1\nB2\n", "")
    assert_projection_is_exact(second.journal, second.projection, tmp_path)


def test_a_journal_older_than_its_projection_is_rebuilt_saying_why(
    store: Path, cli: InProcessCli, tmp_path: Path
) -> None:
    with CommandService(store) as commands:
        commands.create_item("Item1", "kept")
        commands.create_item("Item2", "kept")
    backup = tmp_path / "backup.db"
    shutil.copyfile(store / "journal.db", backup)
    write(store, 2, prefix="Lost")
    assert cli("sync").out == "Synced 6 events (position 0 -> 6)\n"
    shutil.copyfile(backup, store / "journal.db")  # restored from a backup: same journal id

    assert cli("sync") == (
        0,
        "Rebuilt from 2 events (position 0 -> 2)\n",
        "Rebuilding the projection: the projection is ahead of the journal "
        "(position 6 > 2): the journal was replaced\n",
    )
    assert cli("item", "list") == (0, "Item1\nItem2\n", "")


def test_a_journal_restored_from_a_backup_and_written_to_is_rebuilt(
    store: Path, cli: InProcessCli, tmp_path: Path
) -> None:
    with CommandService(store) as commands:
        commands.create_item("Item1", "kept")
        commands.create_item("Item2", "kept")
    backup = tmp_path / "backup.db"
    shutil.copyfile(store / "journal.db", backup)
    write(store, 2, prefix="Lost")  # positions 3 to 6
    assert cli("sync").out == "Synced 6 events (position 0 -> 6)\n"
    shutil.copyfile(backup, store / "journal.db")
    write(store, 3, prefix="New")  # positions 3 to 7 again, other events

    result = cli("sync")
    assert result.code == 0
    assert cli("item", "list") == (0, "Item1\nItem2\nNew1\nNew2\n", "")
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_sync_with_no_journal_yet_applies_nothing_and_creates_no_files(
    store: Path, cli: InProcessCli
) -> None:
    nothing = f"No journal at {store / 'journal.db'} yet: nothing to sync.\n"
    assert cli("sync") == (0, "Synced 0 events (position 0 -> 0)\n", nothing)
    assert cli("sync", "--rebuild") == (0, "Synced 0 events (position 0 -> 0)\n", nothing)
    assert json.loads(cli("sync", "--json").out) == {
        "applied": 0,
        "start": 0,
        "end": 0,
        "rebuilt": False,
        "reasons": [],
    }
    assert not store.exists()


@pytest.mark.parametrize(
    "argv",
    [("--batch-size", "0"), ("--batch-size", "x"), ("--follow", "--poll", "0")],
    ids=str,
)
def test_bad_sync_options_are_usage_errors(
    store: Path, cli: InProcessCli, argv: tuple[str, ...]
) -> None:
    write(store, 1)
    result = cli("sync", *argv)
    assert (result.code, result.out) == (2, "")
    assert len(result.err.splitlines()) == 1
    assert not (store / "projection.db").exists()


WRITER = """
import sys
from cqrs_cli import CommandService

with CommandService(sys.argv[1]) as commands:
    for n in range(int(sys.argv[2])):
        commands.create_item(f"burst-{n:03d}", "from a writer process")
"""


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_follow_picks_up_writes_of_other_processes_and_stops_cleanly_on_a_signal(
    store: Path, cqrs_exe: str, tmp_path: Path, stop: signal.Signals
) -> None:
    write(store, 2)
    follower = subprocess.Popen(
        [cqrs_exe, "sync", "--follow", "--poll", "0.05", "--batch-size", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        lines = LineReader(follower.stdout)  # type: ignore[arg-type]
        assert lines.next_line() == "Synced 4 events (position 0 -> 4)"

        created = run_cqrs(
            cqrs_exe, "item", "create", "Followed", "-d", "seen by the follower", text=True
        )
        assert created.returncode == 0
        assert lines.next_line() == "Synced 1 event (position 4 -> 5)"
        assert (
            run_cqrs(cqrs_exe, "item", "get", "Followed", text=True).stdout
            == "Followed: seen by the follower\n"
        )

        writer = python_child(WRITER, str(store), "40")
        assert writer.wait(timeout=60) == 0, writer.stderr.read()  # type: ignore[union-attr]
        assert wait_until(lambda: checkpoint_of(store / "projection.db") == 45)

        # A last burst, interrupted while it is (probably) still being applied.
        writer = python_child(WRITER.replace("burst-", "last-"), str(store), "40")
        assert wait_until(lambda: checkpoint_of(store / "projection.db") > 45)
        follower.send_signal(stop)
        assert follower.wait(timeout=30) == 0
        assert writer.wait(timeout=60) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    errors = follower.stderr.read()  # type: ignore[union-attr]
    assert "Traceback" not in errors
    assert errors.splitlines()[-1] == "Stopped."
    applied = [int(line.split()[1]) for line in [*lines.seen, *lines.rest()]]
    stopped_at = checkpoint_of(store / "projection.db")
    # Not `==`: batches committed by a run that the signal then stops go unreported
    # (test_a_follower_stopped_mid_run_reports_the_batches_it_committed).
    assert sum(applied) <= stopped_at

    resumed = run_cqrs(cqrs_exe, "sync", text=True)
    noun = "event" if 85 - stopped_at == 1 else "events"
    assert resumed.stdout == f"Synced {85 - stopped_at} {noun} (position {stopped_at} -> 85)\n"
    assert len(journal_events(store / "journal.db")) == 85
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_follow_on_an_empty_store_waits_for_the_journal(store: Path, cqrs_exe: str) -> None:
    follower = subprocess.Popen(
        [cqrs_exe, "sync", "--follow", "--poll", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        notes = LineReader(follower.stderr)  # type: ignore[arg-type]
        assert notes.next_line() == "Following the journal; Ctrl-C to stop."
        lines = LineReader(follower.stdout)  # type: ignore[arg-type]
        assert run_cqrs(cqrs_exe, "item", "create", "First", "-d", "at last").returncode == 0
        assert lines.next_line() == "Synced 1 event (position 0 -> 1)"
        assert run_cqrs(cqrs_exe, "item", "get", "First", text=True).stdout == "First: at last\n"
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=30) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert notes.rest() == ["Stopped."]
    assert lines.rest() == []


def test_a_follower_stopped_mid_run_reports_the_batches_it_committed(
    store: Path, cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cqrs_cli.sync.apply import Batch, apply_next

    write(store, 2)
    assert cli("sync").out == "Synced 4 events (position 0 -> 4)\n"
    write(store, 10, prefix="More")  # positions 5 to 16
    batches = []

    def interrupted_in_the_third_batch(*args: Any, **kwargs: Any) -> Batch | None:
        batches.append(args)
        if len(batches) == 3:
            raise KeyboardInterrupt  # as the SIGINT handler does, mid-batch
        return apply_next(*args, **kwargs)

    monkeypatch.setattr("cqrs_cli.sync.runner.apply_next", interrupted_in_the_third_batch)
    result = cli("sync", "--follow", "--batch-size", "5")
    assert result.code == 0
    assert result.err.splitlines()[-1] == "Stopped."
    assert checkpoint_of(store / "projection.db") == 14
    assert result.out == "Synced 10 events (position 4 -> 14)\n"


def test_a_sync_waits_for_another_sync_beyond_the_busy_timeout(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    write(store, 3)
    QueryService(store).sync()
    write(store, 2, prefix="More")
    env = child_env(CQRS_BUSY_TIMEOUT="0.1")
    other_sync = sqlite3.connect(store / "projection.db", isolation_level=None)
    other_sync.execute("BEGIN IMMEDIATE")  # as a sync in the middle of a batch
    try:
        waiting = subprocess.Popen(
            [cqrs_exe, "sync"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=1.0)  # well past CQRS_BUSY_TIMEOUT: still waiting
    finally:
        other_sync.execute("ROLLBACK")
        other_sync.close()
    out, err = waiting.communicate(timeout=60)
    assert (waiting.returncode, out, err) == (0, "Synced 4 events (position 5 -> 9)\n", "")
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_a_sync_that_waits_longer_than_cqrs_sync_timeout_exits_6(
    store: Path, cqrs_exe: str
) -> None:
    write(store, 3)
    QueryService(store).sync()
    write(store, 2, prefix="More")
    before = dump_projection(store / "projection.db")
    other_sync = sqlite3.connect(store / "projection.db", isolation_level=None)
    other_sync.execute("BEGIN IMMEDIATE")
    try:
        result = run_cqrs(cqrs_exe, "sync", env=child_env(CQRS_SYNC_TIMEOUT="0.2"), text=True)
    finally:
        other_sync.execute("ROLLBACK")
        other_sync.close()
    assert (result.returncode, result.stdout) == (6, "")
    assert len(result.stderr.splitlines()) == 1
    assert str(store / "projection.db") in result.stderr
    assert dump_projection(store / "projection.db") == before


def test_paths_with_uri_characters_work(tmp_path: Path, cqrs_exe: str) -> None:
    home = tmp_path / "a b" / "h%41?x#y&mode=rw"
    env = child_env(home)
    assert run_cqrs(cqrs_exe, "item", "create", "Item1", "-d", "odd home", env=env).returncode == 0
    assert (
        run_cqrs(cqrs_exe, "sync", env=env, text=True).stdout
        == "Synced 1 event (position 0 -> 1)\n"
    )
    assert run_cqrs(cqrs_exe, "sync", "--rebuild", env=env, text=True).stdout == (
        "Rebuilt from 1 event (position 0 -> 1)\n"
    )
    assert (
        run_cqrs(cqrs_exe, "item", "get", "Item1", env=env, text=True).stdout == "Item1: odd home\n"
    )
    assert sorted(path.name for path in home.iterdir() if path.suffix == ".db") == [
        "journal.db",
        "projection.db",
    ]
    assert_projection_is_exact(home / "journal.db", home / "projection.db", tmp_path)
