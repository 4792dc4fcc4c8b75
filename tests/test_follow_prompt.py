"""Followers apply a commit as soon as it is made, not at their next poll:
`cqrs sync --follow` and `cqrs events --follow` wait in `Journal.wait_for_change`
(journal/base.py, "Change notice"), and `--poll` is only the longest wait between two
looks at the head and at a request to stop.

The followers here run with `--poll 30`: code that slept between polls would take 30 s
to see a write; each write must be seen within a few seconds (a generous bound, not a
timing claim; `make bench` measures the milliseconds). While waiting, a follower holds
no read transaction (docs/architecture.md, Sync rule 2), and a signal still stops it
at once.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from common import LineReader, child_env, run_cqrs

from cqrs_cli import CommandService, StorePaths
from cqrs_cli.journal.memory_journal import MemoryJournal
from cqrs_cli.journal.sqlite_journal import SqliteJournal
from cqrs_cli.sync.runner import Syncer, SyncReport

PROMPT = 5.0
"""Seconds a follower may take to show a write: far below --poll, far above the ms."""
POLL = "30"


def start(cqrs_exe: str, *args: str) -> tuple[subprocess.Popen[str], LineReader]:
    follower = subprocess.Popen(
        [cqrs_exe, *args, "--poll", POLL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert follower.stdout is not None
    return follower, LineReader(follower.stdout)


def stop(follower: subprocess.Popen[str], how: signal.Signals) -> float:
    """Signal the follower; the seconds it took to exit (with status 0)."""
    start = time.monotonic()
    follower.send_signal(how)
    assert follower.wait(timeout=PROMPT * 2) == 0
    return time.monotonic() - start


def timed_line(lines: LineReader) -> tuple[str, float]:
    start = time.monotonic()
    line = lines.next_line(timeout=PROMPT * 4)  # a clear failure rather than a hang
    return line, time.monotonic() - start


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_sync_follow_applies_each_write_within_seconds_not_at_the_next_poll(
    store: Path, cqrs_exe: str, how: signal.Signals
) -> None:
    with CommandService() as service:
        service.create_item("First")
        follower, lines = start(cqrs_exe, "sync", "--follow", "--json")
        try:
            assert json.loads(lines.next_line())["end"] == 1
            for n in range(3):
                time.sleep(0.2)  # idle in its wait, not in the middle of a sync
                service.create_item(f"Item{n}")
                line, took = timed_line(lines)
                assert json.loads(line)["end"] == n + 2
                assert took < PROMPT, f"write {n} took {took:.1f} s to be applied"
            # A signal ends the wait at once too, not after --poll.
            assert stop(follower, how) < PROMPT
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
    assert follower.stderr is not None
    errors = follower.stderr.read()
    assert "Traceback" not in errors and errors.splitlines()[-1] == "Stopped."
    assert run_cqrs(cqrs_exe, "item", "get", "Item2", text=True).returncode == 0


def test_events_follow_prints_each_write_within_seconds_not_at_the_next_poll(
    store: Path, cqrs_exe: str
) -> None:
    with CommandService() as service:
        service.create_item("First")
        follower, lines = start(cqrs_exe, "events", "--follow", "--type", "ItemUpdated")
        try:
            time.sleep(0.2)
            service.create_item("Skipped")  # filtered out: the follower keeps waiting
            for n in range(3):
                time.sleep(0.2)
                service.update_item("First", f"revision {n}")
                line, took = timed_line(lines)
                assert json.loads(line)["data"] == {"description": f"revision {n}"}
                assert took < PROMPT, f"write {n} took {took:.1f} s to be printed"
            assert stop(follower, signal.SIGINT) < PROMPT
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()


def test_a_waiting_follower_holds_no_read_transaction(store: Path) -> None:
    """A checkpoint that must wait for every reader (TRUNCATE) completes while another
    handle waits for a change: no snapshot is pinned between two looks."""
    with CommandService() as service:
        service.create_item("First")
    path = str(store / "journal.db")
    waiting = SqliteJournal.open(path, create=False, readonly=True)
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(waiting.wait_for_change(1, 60)))
    waiter.start()
    try:
        time.sleep(0.2)
        writer = sqlite3.connect(path, isolation_level=None, timeout=5)
        try:
            for n in range(3):
                # Not yet a change the waiter would return on: it keeps looking.
                writer.execute("CREATE TABLE IF NOT EXISTS scratch (n)")
                writer.execute("INSERT INTO scratch VALUES (?)", (n,))
                busy, _, _ = writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                assert busy == 0, "a reader kept a snapshot open"
        finally:
            writer.close()
        assert waiter.is_alive() and result == []
        with CommandService() as service:
            service.create_item("Second")
        waiter.join(PROMPT)
        assert result == [True]
    finally:
        waiter.join(70)
        waiting.close()


def test_syncer_follow_on_a_memory_journal_is_woken_by_each_commit(tmp_path: Path) -> None:
    journal = MemoryJournal()
    paths = StorePaths(str(tmp_path / "unused-journal.db"), str(tmp_path / "projection.db"))
    reports: list[tuple[SyncReport, float]] = []
    seen = threading.Condition()
    stopping = threading.Event()

    def on_report(report: SyncReport) -> None:
        with seen:
            reports.append((report, time.monotonic()))
            seen.notify_all()

    def follow() -> None:
        with Syncer(paths, journal=journal) as syncer:
            syncer.follow(on_report, poll_interval=30, should_stop=stopping.is_set)

    def reported(count: int) -> None:
        with seen:
            assert seen.wait_for(lambda: len(reports) == count, PROMPT * 4)

    thread = threading.Thread(target=follow)
    with CommandService(journal=journal) as service:
        service.create_item("First")
        thread.start()
        try:
            for n in range(3):
                reported(n + 1)
                time.sleep(0.1)
                service.create_item(f"Item{n}")
                committed = time.monotonic()
                reported(n + 2)
                report, at = reports[-1]
                assert report.end == n + 2 and at - committed < PROMPT
        finally:
            # Stopping is asked between waits: one more commit ends the current one.
            stopping.set()
            service.create_item("Last")
            thread.join(PROMPT * 4)
    assert not thread.is_alive()
