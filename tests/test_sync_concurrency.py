"""Several `cqrs sync` processes at once, while other processes write: every event is
applied exactly once, and the projection ends up exactly a clean rebuild."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from common import LineReader, child_env, python_child, run_cqrs, wait_until
from projection_helpers import assert_projection_is_exact, journal_events

WRITER = """
import random
import sys

from cqrs_cli import CommandService
from cqrs_cli.errors import ConflictError, NotFoundError

home, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
ids = [f"item-{n:02d}" for n in range(15)]
with CommandService(home) as commands:
    for n in range(count):
        item_id = rng.choice(ids)
        roll = rng.random()
        try:
            if roll < 0.4:
                commands.create_item(item_id, f"writer {seed} write {n}")
            elif roll < 0.85:
                commands.update_item(item_id, f"writer {seed} write {n}")
            else:
                commands.delete_item(item_id)
        except (ConflictError, NotFoundError):
            pass  # another writer got there first: the domain said no
"""


def reports(output: str) -> list[dict[str, Any]]:
    """The JSON summaries `cqrs sync --json` printed, one per line."""
    return [json.loads(line) for line in output.splitlines()]


def sync_while_writing(
    store: Path, exe: str, tmp_path: Path, *, writers: int, writes: int, syncers: int
) -> None:
    """`writers` processes write while `syncers` syncs run: half of them `cqrs sync`
    started over and over, half `cqrs sync --follow` polling all the time."""
    followers = [
        subprocess.Popen(
            [exe, "sync", "--follow", "--json", "--poll", "0.01", "--batch-size", str(size)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for size in (1, 4, 9)[: syncers // 2]
    ]
    followed = [LineReader(follower.stdout) for follower in followers]  # type: ignore[arg-type]
    notes = [LineReader(follower.stderr) for follower in followers]  # type: ignore[arg-type]
    for lines in notes:
        # From here on Ctrl-C stops it cleanly.
        assert lines.next_line() == "Following the journal; Ctrl-C to stop."
    writing = threading.Event()
    writing.set()
    results: list[subprocess.CompletedProcess[str]] = []

    def sync_repeatedly(batch_size: int) -> None:
        while writing.is_set():
            results.append(
                run_cqrs(exe, "sync", "--json", "--batch-size", str(batch_size), text=True)
            )

    loops = [
        threading.Thread(target=sync_repeatedly, args=(size,))
        for size in (3, 50, 7)[: syncers - len(followers)]
    ]
    for loop in loops:
        loop.start()
    procs = [python_child(WRITER, str(store), str(seed), str(writes)) for seed in range(writers)]
    try:
        for proc in procs:
            _, errors = proc.communicate(timeout=300)
            assert proc.returncode == 0, errors
        writing.clear()
        for loop in loops:
            loop.join()
        events = journal_events(store / "journal.db")

        def applied() -> int:
            outputs = [result.stdout for result in results]
            outputs += ["\n".join(reader.drain()) for reader in followed]
            return sum(report["applied"] for output in outputs for report in reports(output))

        # The followers catch up with the last writes; stopped while idle, they have
        # reported everything they applied.
        assert wait_until(lambda: applied() >= len(events), timeout=60)
    finally:
        writing.clear()
        for loop in loops:
            loop.join()
        for follower in followers:
            follower.send_signal(signal.SIGINT)
        for follower in followers:
            assert follower.wait(timeout=30) == 0
    final = run_cqrs(exe, "sync", "--json", text=True)
    results.append(final)
    assert reports(final.stdout)[0]["applied"] == 0

    assert [lines.rest() for lines in notes] == [["Stopped."]] * len(notes)
    assert [result.returncode for result in results] == [0] * len(results), [
        result.stderr for result in results if result.returncode
    ]
    for lines in followed:
        lines.rest()
    everything = [
        *(report for result in results for report in reports(result.stdout)),
        *(report for lines in followed for report in reports("\n".join(lines.seen))),
    ]
    assert {(report["rebuilt"], tuple(report["reasons"])) for report in everything} == {(False, ())}
    assert len(events) > writers * writes // 3
    # Every event was applied by exactly one of all those syncs.
    assert sum(report["applied"] for report in everything) == len(events)
    assert reports(final.stdout)[0]["end"] == events[-1].position
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_concurrent_syncs_while_writers_append_apply_every_event_exactly_once(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    sync_while_writing(store, cqrs_exe, tmp_path, writers=3, writes=250, syncers=4)


@pytest.mark.slow
def test_many_concurrent_syncs_while_many_writers_append(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    sync_while_writing(store, cqrs_exe, tmp_path, writers=4, writes=1500, syncers=6)
