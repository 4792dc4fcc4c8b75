"""Killing sync at any instant loses nothing and applies nothing twice.

The test-only hook CQRS_TEST_CRASH_AT=POINT:N makes `cqrs sync` SIGKILL itself the Nth
time it reaches POINT (mid-batch, before-commit, after-commit, rebuild-mid,
rebuild-before-commit). After each crash a normal sync resumes from the last committed
batch, and the projection is then exactly a clean rebuild of the journal."""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest
from common import child_env, read_only, run_cqrs
from projection_helpers import (
    assert_projection_is_exact,
    checkpoint_of,
    copy_of_random_journal,
    dump_projection,
    write_random_events,
)

from cqrs_cli import QueryService

EVENTS = 500
BATCH = "50"


def crash_at(exe: str, point: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(CQRS_TEST_CRASH_AT=point)
    return run_cqrs(exe, "sync", "--batch-size", BATCH, *args, env=env, text=True)


def assert_resumes_exactly(store: Path, exe: str, tmp_path: Path, head: int) -> None:
    """A normal sync picks up where the last committed batch left off, and ends with
    every event applied exactly once."""
    projection = store / "projection.db"
    reached = checkpoint_of(projection) if projection.exists() else 0
    resumed = run_cqrs(exe, "sync", "--batch-size", BATCH, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == f"Synced {head - reached} events (position {reached} -> {head})\n"
    assert_projection_is_exact(store / "journal.db", projection, tmp_path)


def synced_then_written(store: Path, exe: str) -> None:
    """A projection synced at position 50, and a journal that has gone on to 500."""
    write_random_events(store / "journal.db", 50, items=40, seed=1)
    assert run_cqrs(exe, "sync", text=True).stdout == "Synced 50 events (position 0 -> 50)\n"
    write_random_events(store / "journal.db", EVENTS - 50, items=40, seed=2)


@pytest.mark.parametrize(
    ("point", "committed"),
    [
        ("mid-batch:1", 50),
        ("mid-batch:3", 150),
        ("before-commit:1", 50),
        ("before-commit:3", 150),
        ("after-commit:1", 100),
        ("after-commit:3", 200),
        ("after-commit:9", 500),
    ],
)
def test_a_sync_killed_during_catch_up_keeps_its_committed_batches_and_resumes(
    store: Path, cqrs_exe: str, tmp_path: Path, point: str, committed: int
) -> None:
    synced_then_written(store, cqrs_exe)
    crashed = crash_at(cqrs_exe, point)
    assert crashed.returncode == -9
    assert crashed.stdout == ""
    assert checkpoint_of(store / "projection.db") == committed
    assert_resumes_exactly(store, cqrs_exe, tmp_path, EVENTS)


def test_a_first_sync_killed_part_way_leaves_nothing_half_built(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    # A first sync builds the projection in one transaction, like a rebuild.
    write_random_events(store / "journal.db", EVENTS, items=40, seed=1)
    crashed = crash_at(cqrs_exe, "rebuild-mid:1")
    assert crashed.returncode == -9
    assert crashed.stdout == ""
    assert checkpoint_of(store / "projection.db") == 0
    assert dump_projection(store / "projection.db")["items"] == []
    assert_resumes_exactly(store, cqrs_exe, tmp_path, EVENTS)


@pytest.mark.parametrize("point", ["rebuild-mid:1", "rebuild-before-commit:1"])
def test_a_rebuild_killed_before_it_commits_leaves_the_previous_projection(
    store: Path, cqrs_exe: str, tmp_path: Path, point: str
) -> None:
    synced_then_written(store, cqrs_exe)
    # A projection that got half way: killed after its third batch.
    assert crash_at(cqrs_exe, "after-commit:3").returncode == -9
    before = dump_projection(store / "projection.db")
    assert checkpoint_of(store / "projection.db") == 200

    crashed = crash_at(cqrs_exe, point, "--rebuild")
    assert crashed.returncode == -9
    assert crashed.stdout == ""
    assert dump_projection(store / "projection.db") == before
    assert_resumes_exactly(store, cqrs_exe, tmp_path, EVENTS)


def test_a_rebuild_killed_after_a_view_change_is_done_again_by_the_next_sync(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    write_random_events(store / "journal.db", EVENTS, items=40, seed=1)
    QueryService(store).sync()
    conn = sqlite3.connect(store / "projection.db")
    conn.execute("UPDATE projection_views SET version = 0 WHERE view = 'item_history'")
    conn.commit()
    conn.close()
    before = dump_projection(store / "projection.db")

    assert crash_at(cqrs_exe, "rebuild-mid:1").returncode == -9
    assert dump_projection(store / "projection.db") == before

    resumed = run_cqrs(cqrs_exe, "sync", text=True)
    assert resumed.returncode == 0
    assert resumed.stdout == f"Rebuilt from {EVENTS} events (position 0 -> {EVENTS})\n"
    assert resumed.stderr == (
        "Rebuilding the projection: view item_history changed from version 0 to 1\n"
    )
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


RANDOM_EVENTS = 20_000
MODES = ("first sync", "catch-up", "rebuild")


def prepare(store: Path, mode: str) -> None:
    """A journal of RANDOM_EVENTS events, and a projection as `mode` finds it."""
    journal = store / "journal.db"
    if mode == "catch-up":
        write_random_events(journal, 2_000, items=400, seed=3)
        QueryService(store).sync()
        write_random_events(journal, RANDOM_EVENTS - 2_000, items=400, seed=4)
        return
    copy_of_random_journal(journal, RANDOM_EVENTS, items=400)
    if mode == "rebuild":
        QueryService(store).sync()


def kill_at_a_random_moment(
    store: Path, exe: str, tmp_path: Path, seed: int, mode: str, window: tuple[float, float]
) -> None:
    """Start `cqrs sync` as `mode` needs, kill -9 it at a random fraction (within
    `window`) of the time an uninterrupted run takes here, then resume and compare."""
    prepare(store, mode)
    projection = store / "projection.db"
    argv = [exe, "sync", "--batch-size", "100", *(["--rebuild"] if mode == "rebuild" else [])]
    before = dump_projection(projection) if projection.exists() else None

    # How long the same run takes when nobody kills it, start-up included.
    timing = tmp_path / "timing"
    shutil.copytree(store, timing)
    started = time.monotonic()
    uninterrupted = subprocess.run(argv, env=child_env(timing), capture_output=True)
    duration = time.monotonic() - started
    assert uninterrupted.returncode == 0

    sync = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env()
    )
    try:
        time.sleep(duration * random.Random(seed).uniform(*window))
    finally:
        sync.kill()
        sync.wait()
    if mode == "rebuild":
        # Killed before its commit, or after it: either way the same complete projection.
        assert dump_projection(projection) == before
    assert_resumes_exactly(store, exe, tmp_path, RANDOM_EVENTS)


def test_a_first_sync_killed_at_a_random_moment_resumes_exactly(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    kill_at_a_random_moment(store, cqrs_exe, tmp_path, 0, "first sync", (0.2, 0.9))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 13))
def test_syncs_and_rebuilds_killed_at_random_moments_resume_exactly(
    store: Path, cqrs_exe: str, tmp_path: Path, seed: int
) -> None:
    mode = MODES[seed % len(MODES)]
    kill_at_a_random_moment(store, cqrs_exe, tmp_path, seed, mode, (0.0, 1.2))


def test_a_sync_killed_during_a_wal_checkpoint_leaves_a_usable_projection(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    journal, projection = store / "journal.db", store / "projection.db"
    write_random_events(journal, 50, items=40, seed=1)
    QueryService(store).sync()
    write_random_events(journal, 1_950, items=40, seed=2)
    # While another connection is open, the sync's own close does not checkpoint: its
    # batches stay in the WAL, as they are until a checkpoint copies them over.
    holder = sqlite3.connect(projection, isolation_level=None)
    try:
        holder.execute("SELECT COUNT(*) FROM items").fetchone()
        assert run_cqrs(cqrs_exe, "sync").returncode == 0
        crashed = tmp_path / "crashed"
        crashed.mkdir()
        shutil.copyfile(journal, crashed / "journal.db")
        for name in ("projection.db", "projection.db-wal"):
            shutil.copyfile(store / name, crashed / name)
        assert (crashed / "projection.db-wal").stat().st_size > 0
        holder.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        holder.close()
    # A checkpoint writes pages in ascending order: killed after page 1, the file's
    # header already counts the pages that were still to be written.
    page_size = int.from_bytes(projection.read_bytes()[16:18], "big")
    with open(crashed / "projection.db", "r+b") as handle:
        handle.write(projection.read_bytes()[:page_size])
    with closing(read_only(crashed / "projection.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    env = child_env(crashed)
    listed = run_cqrs(cqrs_exe, "item", "list", env=env, text=True)
    assert listed.returncode == 0, listed.stderr
    assert run_cqrs(cqrs_exe, "sync", env=env).returncode == 0
    assert_projection_is_exact(crashed / "journal.db", crashed / "projection.db", tmp_path)
