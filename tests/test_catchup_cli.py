"""The catch-up a `cqrs` write leaves behind, seen from the command line: reads catch
up by themselves within about a second, `cqrs status` tells whether one runs and how
the last one ended, a failed one is logged and named by the next read that is behind,
and nothing about the write depends on it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from catchup_helpers import checkpoint, wait_caught_up
from common import SUBPROCESS_TIMEOUT, InProcessCli, ndjson

from cqrs_cli import CommandService
from cqrs_cli.sync import trigger
from cqrs_cli.sync.catchup_lock import claim, finish, release

pytestmark = pytest.mark.usefixtures("catch_up")


def test_a_read_soon_after_a_write_shows_it_without_any_sync(
    store: Path, cli: InProcessCli
) -> None:
    assert cli("item", "create", "Item1").code == 0
    assert cli("item", "update", "Item1", "Updated Description").code == 0
    assert wait_caught_up(store, timeout=2.0) is not None
    read = cli("item", "get", "Item1")
    assert (read.code, read.out, read.err) == (0, "Item1: Updated Description\n", "")
    assert cli("item", "list").out == "Item1\n"


def test_apply_leaves_a_catch_up_behind_too(store: Path, cli: InProcessCli) -> None:
    lines = ndjson(*({"op": "create", "id": f"i{n}"} for n in range(50)))
    assert cli("apply", stdin=lines).code == 0
    assert wait_caught_up(store, timeout=2.0) is not None
    assert checkpoint(store / "projection.db") == 50


def test_the_environment_variable_turns_it_off(
    store: Path, cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CQRS_CATCHUP", "off")
    assert cli("item", "create", "Item1").code == 0
    assert trigger.spawned == []
    time.sleep(0.3)
    assert not (store / "projection.db").exists()
    read = cli("item", "get", "Item1")
    assert read.code == 5 and "no projection yet" in read.err
    assert "catch-up:    off (CQRS_CATCHUP=0)" in cli("status").out.splitlines()


def test_sync_and_dry_runs_leave_no_catch_up_behind(store: Path, cli: InProcessCli) -> None:
    assert cli("item", "create", "Item1", "--sync").code == 0
    assert cli("item", "create", "Item2", "--dry-run").code == 0
    assert cli("item", "create", "Item1").code == 4  # a conflict writes nothing
    assert trigger.spawned == []


def test_status_says_whether_a_catch_up_runs_and_when_the_last_one_ended(
    store: Path, cli: InProcessCli
) -> None:
    assert cli("item", "create", "Item1").code == 0
    assert wait_caught_up(store, timeout=2.0) is not None
    trigger.reap()
    status = json.loads(cli("status", "--json").out)["catch_up"]
    assert status["enabled"] is True and status["running"] is False
    assert status["last_outcome"] == "ok" and status["last_ended_at"].startswith("20")
    line = cli("status").out.splitlines()[-1]
    assert line == f"catch-up:    last ended {status['last_ended_at']} (ok)"

    # A catch-up holding the lock (here: this test, as a writer about to start one).
    projection = str(store / "projection.db")
    lock = claim(projection)
    assert lock is not None
    try:
        assert json.loads(cli("status", "--json").out)["catch_up"]["running"] is True
        assert cli("status").out.splitlines()[-1].startswith("catch-up:    running (")
        # A write meanwhile starts no second catch-up: it is marked for this one.
        assert cli("item", "create", "Item2").code == 0
        assert trigger.spawned == []
    finally:
        go_on, _ = finish(projection, lock)
    assert go_on  # the write was pending: the holder must sync again
    release(lock)


def test_a_failed_catch_up_leaves_one_log_line_and_the_next_read_names_it(
    store: Path, cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("item", "create", "Item1").code == 0
    assert wait_caught_up(store, timeout=2.0) is not None
    assert trigger.reap() == [0]
    monkeypatch.setenv("CQRS_SYNC_TIMEOUT", "0.2")
    holder = sqlite3.connect(store / "projection.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another sync holds the projection
    try:
        write = cli("item", "create", "Item2")
        assert write.code == 0  # the write does not depend on its catch-up
        assert trigger.reap() == [1]  # the catch-up failed (busy)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    log = (store / "catchup.log").read_text().splitlines()
    assert len(log) == 1
    assert f"catch-up of {store / 'projection.db'} failed" in log[0]
    assert "busy" in log[0] or "locked" in log[0]
    read = cli("item", "get", "Item1")
    assert read.code == 0
    assert "the projection is behind the journal (position 1 of 2)" in read.err
    assert "the last catch-up after a write failed at 20" in read.err
    assert f"see {store / 'catchup.log'}" in read.err
    assert "last failed at" in cli("status").out.splitlines()[-1]
    # The next write's catch-up succeeds; reads no longer mention the failure.
    monkeypatch.delenv("CQRS_SYNC_TIMEOUT")
    assert cli("item", "create", "Item3").code == 0
    assert wait_caught_up(store, timeout=2.0) is not None
    assert trigger.reap() == [0]
    assert cli("item", "get", "Item1").err == ""


def test_a_write_whose_catch_up_cannot_start_succeeds_as_usual(
    tmp_path: Path, cli: InProcessCli
) -> None:
    (tmp_path / "not-a-folder").write_text("")
    projection = tmp_path / "not-a-folder" / "projection.db"  # nothing can be made there
    journal = tmp_path / "journal.db"
    write = cli("--journal", str(journal), "--projection", str(projection), "item", "create", "X")
    assert (write.code, write.out) == (0, "Item created: X\n")
    assert trigger.spawned == []
    assert journal.exists()


@pytest.mark.parametrize("error", [OSError(12, "Cannot allocate memory"), RuntimeError("bug")])
def test_a_catch_up_that_fails_to_start_changes_nothing_about_the_write(
    store: Path, cli: InProcessCli, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    import os

    def refuse(*args: object, **kwargs: object) -> int:
        raise error

    with monkeypatch.context() as patched:
        patched.setattr(os, "posix_spawn", refuse)
        write = cli("item", "create", "Item1")
    assert (write.code, write.out, write.err) == (
        0,
        "Item created: Item1\n",
        "Journal position: 1\n",
    )
    # The lock it took was given back: the next write starts a catch-up.
    assert cli("item", "create", "Item2").code == 0
    assert len(trigger.spawned) == 1
    assert wait_caught_up(store, timeout=2.0) is not None


def test_the_writes_hot_path_imports_nothing_for_the_catch_up_but_os_and_fcntl() -> None:
    code = "import cqrs_cli.sync.trigger"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=True,
    )
    baseline = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=True,
    )

    def modules(stderr: str) -> set[str]:
        return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if "|" in line}

    added = modules(result.stderr) - modules(baseline.stderr) - {"module"}
    assert added <= {
        "__future__",
        "fcntl",
        "cqrs_cli",
        "cqrs_cli.sync",
        "cqrs_cli.sync.trigger",
        "cqrs_cli.sync.catchup_lock",
    }


def test_starting_a_catch_up_costs_the_write_milliseconds_at_most(store: Path) -> None:
    from cqrs_cli.paths import StorePaths
    from cqrs_cli.sync.trigger import after_write

    CommandService(store, catch_up=False).create_item("warm")
    paths = StorePaths.resolve(home=str(store))
    spent = []
    for _ in range(5):
        before = time.perf_counter()
        assert after_write(paths) is not None  # the lock was free: a catch-up started
        spent.append(time.perf_counter() - before)
        assert trigger.reap() == [0]
    # Measured here at about 0.5 ms (a lock try and one posix_spawn); generous for a
    # machine shared with other test runs.
    assert sorted(spent)[2] < 0.02, spent


def test_from_the_cqrs_command_the_catch_up_waits_for_the_writer_to_exit(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cqrs_cli.paths import StorePaths
    from cqrs_cli.sync.trigger import after_write

    CommandService(store, catch_up=False).create_item("Item1")
    monkeypatch.setattr(trigger, "defer_to_exit", True)  # as cli/main.py sets it
    assert after_write(StorePaths.resolve(home=str(store))) is not None
    time.sleep(0.5)
    # This "writer" has not exited: its catch-up has not started Python yet.
    assert not (store / "projection.db").exists()
    assert json.loads(cli_status(store))["catch_up"]["running"] is True
    # reap() closes the pipe's end, as the writer's exit does: the catch-up goes on.
    assert trigger.reap() == [0]
    assert checkpoint(store / "projection.db") == 1


def cli_status(store: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cqrs_cli", "status", "--json"],
        env={**os.environ, "CQRS_HOME": str(store)},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=True,
    )
    return result.stdout
