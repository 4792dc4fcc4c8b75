"""Eight processes writing to one journal at once: shared items (every process updates the
same few items, so appends conflict and are decided again) and items of their own.
Every acknowledged write must be in the journal exactly once, and the journal intact."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from common import assert_chain_intact

from cqrs_cli.journal.records import RecordedEvent
from cqrs_cli.journal.sqlite_journal import SqliteJournal
from cqrs_cli.write.command_service import CommandService

PROCESSES = 8
WRITES = 60
SHARED = ("Shared0", "Shared1", "Shared2")

# One writer: waits for the start signal, then alternates an update of a shared item with
# a create of its own item, and prints every acknowledged write as one JSON line.
WORKER = """
import json, os, sys, time
from cqrs_cli import CommandService

store, worker, writes, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
shared = sys.argv[5].split(",")
while not os.path.exists(go):
    time.sleep(0.005)
with CommandService(store) as service:
    for n in range(writes):
        if n % 2:
            result = service.update_item(shared[n % len(shared)], f"worker {worker} write {n}")
        else:
            result = service.create_item(f"W{worker}-{n}", f"worker {worker}")
        (event,) = result.events
        print(json.dumps([result.item_id, result.outcome, result.version, result.position,
                          event.event_id]), flush=True)
"""


class Ack(NamedTuple):
    """A write a worker was told had succeeded."""

    item_id: str
    outcome: str
    version: int
    position: int
    event_id: str


def all_events(path: Path) -> list[RecordedEvent]:
    journal = SqliteJournal.open(str(path), create=False)
    try:
        events: list[RecordedEvent] = []
        while batch := journal.read_all(after=events[-1].position if events else 0):
            events += batch
        return events
    finally:
        journal.close()


def run_writers(store: Path) -> list[list[Ack]]:
    """Start the writers together; each one's acknowledged writes, in its own order."""
    go = store / "go"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(store),
                str(n),
                str(WRITES),
                str(go),
                ",".join(SHARED),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    go.touch()
    acknowledged = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert "BusyError" not in err and "Traceback" not in err, err
        acknowledged.append([Ack(*json.loads(line)) for line in out.splitlines()])
    return acknowledged


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(store: Path) -> None:
    with CommandService(store) as service:
        for item_id in SHARED:
            service.create_item(item_id, "start")

    acknowledged = run_writers(store)
    events = all_events(store / "journal.db")

    # Every acknowledged write is in the journal exactly once, where it was acknowledged.
    assert [len(acks) for acks in acknowledged] == [WRITES] * PROCESSES
    by_id = {e.event_id: e for e in events}
    assert len(by_id) == len(events) == len(SHARED) + PROCESSES * WRITES
    for acks in acknowledged:
        for ack in acks:
            event = by_id[ack.event_id]
            assert (event.stream_id, event.stream_version, event.position) == (
                ack.item_id,
                ack.version,
                ack.position,
            )
            assert ack.outcome == ("updated" if event.event_type == "ItemUpdated" else "created")
        positions = [ack.position for ack in acks]
        assert positions == sorted(set(positions)), "a writer's positions went backwards"

    # Positions strictly increase; each stream's versions are 1..n without gaps, in order.
    positions = [e.position for e in events]
    assert positions == sorted(set(positions))
    versions: dict[str, list[int]] = defaultdict(list)
    for e in events:
        versions[e.stream_id].append(e.stream_version)
    for stream_id, stream_versions in versions.items():
        assert stream_versions == list(range(1, len(stream_versions) + 1)), stream_id
    updates = PROCESSES * (WRITES // 2)
    assert sum(len(versions[s]) for s in SHARED) == len(SHARED) + updates

    assert_chain_intact(events)
    conn = sqlite3.connect(str(store / "journal.db"))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
