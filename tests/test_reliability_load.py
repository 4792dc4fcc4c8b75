"""Many processes writing to one journal at once, over a few shared items, with a tailer
reading new positions as they come and `cqrs sync --follow` processes applying them.

Writers use the service's own optimistic retry, or pin --expect-version and retry on a
conflict themselves. Every acknowledged event is in the journal exactly once, where it
was acknowledged; each item's versions are 1..n; positions only grow and a tailer asking
for `position > last` never misses one; nobody sees a busy error; the journal verifies;
and the followers, interrupted, leave a projection a final sync makes exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import defaultdict
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import pytest
from common import (
    SUBPROCESS_TIMEOUT,
    LineReader,
    child_env,
    default_sigint,
    event_rows,
    ndjson,
    python_child,
    run_cqrs,
)
from projection_helpers import assert_projection_is_exact
from reliability_helpers import assert_journal_verifies

from cqrs_cli import CommandService, QueryService

STREAMS = [f"S{n:02d}" for n in range(20)]

# A writer: waits for the start signal, then for each write picks a shared item and
# updates it (the service retries on a conflict), or pins the version it read and
# retries itself on ConflictError (every third write), or creates an item of its own
# (every tenth). Prints each acknowledged write as JSON, then its retry count.
WRITER = """
import json, os, random, sys, time
from cqrs_cli import CommandService, QueryService
from cqrs_cli.errors import ConflictError

home, worker, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
streams = sys.argv[5].split(",")
rng = random.Random(worker)
while not os.path.exists(go):
    time.sleep(0.005)
retries = 0
with CommandService(home) as service:
    for n in range(count):
        stream = rng.choice(streams)
        text = f"writer {worker} write {n}"
        if n % 10 == 9:
            result = service.create_item(f"own-{worker}-{n}", text)
        elif n % 3 == 0:
            while True:
                current = service.update_item(stream, text, dry_run=True).version - 1
                try:
                    result = service.update_item(stream, text, expected_version=current)
                    break
                except ConflictError:
                    retries += 1
        else:
            result = service.update_item(stream, text)
        (event,) = result.events
        print(json.dumps([result.item_id, result.version, result.position, event.event_id]),
              flush=True)
print(json.dumps({"retries": retries}), flush=True)
"""

# A tailer: reads `position > last` in a loop, as a sync does, until the stop file names
# a head it has reached; prints every position it saw, in the order it saw them.
TAILER = """
import json, os, sqlite3, sys, time
path, stop = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
seen, last = [], 0
print("tailing", flush=True)
while True:
    rows = conn.execute(
        "SELECT position FROM events WHERE position > ? ORDER BY position", (last,)
    ).fetchall()
    seen += [row[0] for row in rows]
    if rows:
        last = rows[-1][0]
    else:
        time.sleep(0.001)  # leave the two cores to the writers
    if os.path.exists(stop) and last >= int(open(stop).read()):
        break
print(json.dumps(seen), flush=True)
"""


class Ack(NamedTuple):
    item_id: str
    version: int
    position: int
    event_id: str


def prepare(store: Path) -> None:
    with CommandService(store) as service:
        for stream in STREAMS:
            service.create_item(stream, "start")


class Tailer:
    def __init__(self, store: Path) -> None:
        self.stop = store.parent / "tailer-stop"
        self.process = python_child(TAILER, str(store / "journal.db"), str(self.stop))
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "tailing\n"

    def positions(self, head: int) -> list[int]:
        """Tell it the final head; every position it saw."""
        temporary = self.stop.with_suffix(".tmp")
        temporary.write_text(str(head))
        os.replace(temporary, self.stop)
        out, err = self.process.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert self.process.returncode == 0, err
        seen = json.loads(out)
        assert isinstance(seen, list)
        return seen


def assert_every_ack_once(
    journal: Path, acks: list[list[Ack]], extra: int, tailed: list[int]
) -> None:
    """Every acknowledged write is in the journal once, where it was acknowledged, and
    nothing else is (besides `extra` set-up events); versions are 1..n per item in
    position order; a tailer saw every position, in order."""
    rows = event_rows(journal)
    by_event_id = {str(row[1]): row for row in rows}
    assert len(by_event_id) == len(rows)
    assert len(rows) == extra + sum(len(worker) for worker in acks)
    for worker in acks:
        for ack in worker:
            row = by_event_id[ack.event_id]
            assert (row[2], row[3], row[0]) == (ack.item_id, ack.version, ack.position), ack
        positions = [ack.position for ack in worker]
        assert positions == sorted(set(positions)), "a writer's positions went backwards"
    positions = [int(str(row[0])) for row in rows]
    assert positions == sorted(set(positions))
    versions: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        versions[str(row[2])].append(int(str(row[3])))
    for item_id, item_versions in versions.items():
        assert item_versions == list(range(1, len(item_versions) + 1)), item_id
    assert all(a < b for a, b in pairwise(tailed)), "the tailer went back"
    assert tailed == positions, "the tailer missed or repeated a position"


def start_writers(store: Path, writers: int, writes: int, go: Path) -> list[subprocess.Popen[str]]:
    return [
        python_child(WRITER, str(store), str(n), str(writes), str(go), ",".join(STREAMS))
        for n in range(writers)
    ]


def collect(writer: subprocess.Popen[str], writes: int) -> list[Ack]:
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert err == "", err  # no BusyError, no "database is locked", no warning
    *lines, summary = out.splitlines()
    assert "retries" in json.loads(summary)
    acks = [Ack(*json.loads(line)) for line in lines]
    assert len(acks) == writes
    return acks


@pytest.mark.slow
def test_eight_writers_over_twenty_shared_items_lose_and_duplicate_nothing(
    store: Path, cqrs_exe: str
) -> None:
    writers, writes = 8, 500
    prepare(store)
    tailer = Tailer(store)
    go = store.parent / "go"
    procs = start_writers(store, writers, writes, go)
    go.touch()
    acks = [collect(proc, writes) for proc in procs]
    print(f"{writers} writers, {sum(len(a) for a in acks)} acknowledged writes")
    rows = event_rows(store / "journal.db")
    tailed = tailer.positions(int(str(rows[-1][0])))
    assert_every_ack_once(store / "journal.db", acks, len(STREAMS), tailed)
    assert_journal_verifies(cqrs_exe, store / "journal.db")


def follow(exe: str, store: Path, batch_size: int) -> tuple[subprocess.Popen[str], LineReader]:
    follower = subprocess.Popen(
        [exe, "sync", "--follow", "--poll", "0.02", "--batch-size", str(batch_size)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(store),
        preexec_fn=default_sigint,
    )
    assert follower.stderr is not None
    notes = LineReader(follower.stderr)
    assert notes.next_line() == "Following the journal; Ctrl-C to stop."
    return follower, notes


@pytest.mark.slow
def test_followers_interrupted_while_writers_write_leave_an_exact_projection(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    writers, writes = 4, 1500  # a few seconds of writing here
    prepare(store)
    followers = [follow(cqrs_exe, store, size) for size in (1, 7, 50)]
    go = store.parent / "go"
    procs = start_writers(store, writers, writes, go)
    go.touch()
    # Interrupt the followers while the writers are still writing, mid-batch or not.
    assert procs[0].stdout is not None
    for _ in range(writes // 2):
        procs[0].stdout.readline()
    for follower, _ in followers:
        follower.send_signal(signal.SIGINT)
    for follower, notes in followers:
        assert follower.wait(timeout=SUBPROCESS_TIMEOUT) == 0
        rest = notes.rest()
        assert rest[-1:] == ["Stopped."], rest
        assert not [line for line in rest if "Traceback" in line or "error" in line], rest
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    final = run_cqrs(cqrs_exe, "sync", env=child_env(store))
    assert final.returncode == 0, final.stderr
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)
    assert_journal_verifies(cqrs_exe, store / "journal.db")


# --- The same through the installed command, small enough for every run ------------------------


def cli_writer(
    exe: str, store: Path, worker: int, writes: int, acks: list[Ack]
) -> Callable[[], None]:
    """A writer thread running `cqrs item ...` once per write: updates a shared item
    (cqrs retries a conflict itself), pins --expect-version to what a dry run showed and
    retries on exit 4 (every third write), or creates an item of its own (every tenth)."""
    import random

    rng = random.Random(worker)
    env = child_env(store)

    def write_json(*argv: str) -> subprocess.CompletedProcess[bytes]:
        return run_cqrs(exe, "item", *argv, "--json", env=env)

    def run() -> None:
        for n in range(writes):
            stream = rng.choice(STREAMS)
            text = f"writer {worker} write {n}"
            if n % 10 == 9:
                result = write_json("create", f"own-{worker}-{n}", "-d", text)
            elif n % 3 == 0:
                while True:
                    planned = write_json("update", stream, text, "--dry-run")
                    assert planned.returncode == 0, planned.stderr
                    current = json.loads(planned.stdout)["version"] - 1
                    result = write_json("update", stream, text, "--expect-version", str(current))
                    if result.returncode != 4:
                        break
                    assert b"not the expected version" in result.stderr
            else:
                result = write_json("update", stream, text)
            assert result.returncode == 0, result.stderr  # never 6: busy
            assert result.stderr == b"", result.stderr
            outcome = json.loads(result.stdout)
            (event,) = outcome["events"]
            acks.append(
                Ack(outcome["item_id"], outcome["version"], outcome["position"], event["event_id"])
            )

    return run


def test_concurrent_cqrs_processes_lose_and_duplicate_nothing(store: Path, cqrs_exe: str) -> None:
    writers, writes = 4, 50
    prepare(store)
    tailer = Tailer(store)
    acks: list[list[Ack]] = [[] for _ in range(writers)]
    errors: list[BaseException] = []

    def guarded(run: Callable[[], None]) -> Callable[[], None]:
        def target() -> None:
            try:
                run()
            except BaseException as exc:
                errors.append(exc)

        return target

    threads = [
        threading.Thread(target=guarded(cli_writer(cqrs_exe, store, n, writes, acks[n])))
        for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    assert [len(worker) for worker in acks] == [writes] * writers
    rows = event_rows(store / "journal.db")
    tailed = tailer.positions(int(str(rows[-1][0])))
    assert_every_ack_once(store / "journal.db", acks, len(STREAMS), tailed)
    assert_journal_verifies(cqrs_exe, store / "journal.db")


# --- Several handles on one file in one process --------------------------------------------------


def test_one_handle_per_process_keeps_every_acknowledged_event(store: Path, cqrs_exe: str) -> None:
    env = child_env(store)
    with CommandService(store) as service:
        service.create_item("a1")
        assert run_cqrs(cqrs_exe, "item", "create", "b1", env=env).returncode == 0
        service.create_item("a2")
        assert run_cqrs(cqrs_exe, "item", "create", "b2", env=env).returncode == 0
        service.create_item("a3")
    assert [row[2] for row in event_rows(store / "journal.db")] == ["a1", "b1", "a2", "b2", "a3"]


def test_a_second_handle_in_one_process_keeps_every_acknowledged_event(
    store: Path, cqrs_exe: str
) -> None:
    env = child_env(store)
    with CommandService(store) as first:
        first.create_item("a1")
        with CommandService(store) as second:  # e.g. another request, in another thread
            second.create_item("a2")
        assert run_cqrs(cqrs_exe, "item", "create", "b1", env=env).returncode == 0
        first.create_item("a3")
        assert run_cqrs(cqrs_exe, "item", "create", "b2", env=env).returncode == 0
        first.create_item("a4")
    # Every write was acknowledged (exit 0, or a returned result): all must be there.
    ids = [row[2] for row in event_rows(store / "journal.db")]
    assert ids == ["a1", "a2", "b1", "a3", "b2", "a4"]
    assert_journal_verifies(cqrs_exe, store / "journal.db")


def listing_survives_a_rebuild(store: Path, exe: str, *, second_handle: bool) -> None:
    """A listing in progress keeps its snapshot while another process rebuilds."""
    env = child_env(store)
    ids = [f"item-{n:05d}-" + "x" * 60 for n in range(3000)]
    commands = [{"op": "create", "id": item_id, "description": "d" * 200} for item_id in ids]
    assert run_cqrs(exe, "apply", stdin=ndjson(*commands), env=env).returncode == 0
    assert run_cqrs(exe, "sync", env=env).returncode == 0
    with QueryService(store) as reader:
        listing = reader.item_ids()
        first = next(listing)
        if second_handle:
            with QueryService(store) as other:  # another read in this process
                other.get_item(first)
        deletes = ndjson(*({"op": "delete", "id": item_id} for item_id in ids[::2]))
        assert run_cqrs(exe, "apply", stdin=deletes, env=env).returncode == 0
        rebuilt = run_cqrs(exe, "sync", "--rebuild", env=env)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert [first, *listing] == ids


def test_a_listing_in_progress_keeps_its_snapshot_while_another_process_rebuilds(
    store: Path, cqrs_exe: str
) -> None:
    listing_survives_a_rebuild(store, cqrs_exe, second_handle=False)


def test_a_listing_in_progress_survives_a_second_handle_and_a_rebuild_elsewhere(
    store: Path, cqrs_exe: str
) -> None:
    # Fails with "corrupt database (database disk image is malformed)".
    listing_survives_a_rebuild(store, cqrs_exe, second_handle=True)
