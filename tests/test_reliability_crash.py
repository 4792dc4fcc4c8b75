"""Processes killed with SIGKILL at random moments, several at once or one by one.

Appenders: every event a writer acknowledged is in the journal, once, where it was
acknowledged; the journal verifies; nothing is half-written. The command whose outcome
the writer never learned, run again with its idempotency key, is applied exactly once.

Rebuilds: `cqrs sync --rebuild` killed over and over while others read never lets a
reader see an empty or half-built projection: each read sees the previous complete
projection or the new one. (Syncs killed at chosen points, and resuming after random
kills, are tests/test_sync_crash.py's.)

Kill times come from a seeded generator; the seed is printed, and part of every
assertion message, so that a failure can be replayed."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import pytest
from common import SUBPROCESS_TIMEOUT, child_env, event_rows, python_child, read_only, run_cqrs
from projection_helpers import (
    assert_projection_is_exact,
    copy_of_random_journal,
    fold_journal,
    journal_events,
    write_random_events,
)
from reliability_helpers import assert_journal_verifies

from cqrs_cli import CommandService

# An appender: creates items PREFIX-0, PREFIX-1, ... each with the idempotency key
# key-ID, and prints "ID POSITION" once the journal acknowledged it. Busy (exit 6: with
# several appenders in tight loops a newcomer can wait more than the 5 s timeout for
# the write lock) is retried with the same key, as the README recommends.
APPENDER = """
import sys
from cqrs_cli import CommandService
from cqrs_cli.errors import BusyError

home, prefix, max_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
with CommandService(home) as service:
    n = 0
    while True:
        item_id = f"{prefix}-{n}"
        text = item_id + " " + "d" * ((n * 7919) % (max_size + 1))
        try:
            result = service.create_item(item_id, text, idempotency_key=f"key-{item_id}")
        except BusyError:
            continue
        print(item_id, result.position, flush=True)
        n += 1
"""


class Ack(NamedTuple):
    item_id: str
    position: int


def acknowledged(output: str) -> list[Ack]:
    """The complete lines an appender printed before it died (a last line cut short is
    not an acknowledgement)."""
    lines = output.split("\n")[:-1]
    acks = []
    for line in lines:
        item_id, position = line.split(" ")
        acks.append(Ack(item_id, int(position)))
    return acks


def kill_appenders_at_random(
    store: Path, rng: random.Random, label: str, processes: int, max_wait: float, max_size: int
) -> dict[str, list[Ack]]:
    """Start `processes` appenders, let them run for a random while (after each has
    acknowledged one event), and SIGKILL them, all at once or one by one. Each
    appender's acknowledged events, by its prefix."""
    prefixes = [f"{label}-p{n}" for n in range(processes)]
    children = [python_child(APPENDER, str(store), prefix, str(max_size)) for prefix in prefixes]
    firsts = []
    for child in children:
        assert child.stdout is not None
        firsts.append(child.stdout.readline())
        assert firsts[-1].endswith("\n"), (firsts[-1], child.stderr and child.stderr.read())
    time.sleep(rng.uniform(0, max_wait))
    if rng.random() < 0.5:
        for child in children:
            child.send_signal(signal.SIGKILL)
    else:
        for child in rng.sample(children, len(children)):
            child.send_signal(signal.SIGKILL)
            time.sleep(rng.uniform(0, max_wait / 4))
    acks = {}
    for prefix, child, first in zip(prefixes, children, firsts, strict=True):
        assert child.stdout is not None and child.stderr is not None
        rest = child.stdout.read()
        errors = child.stderr.read()
        assert child.wait(timeout=SUBPROCESS_TIMEOUT) == -signal.SIGKILL, errors
        assert "Traceback" not in errors, errors
        acks[prefix] = acknowledged(first + rest)
    return acks


def check_round(store: Path, exe: str, acks: dict[str, list[Ack]], seed: int, context: str) -> None:
    """Every acknowledged event is there once; the unknown outcome is settled by a
    retry with its key, exactly once; the journal verifies."""
    where = f"seed {seed}, {context}"
    journal = store / "journal.db"
    rows = event_rows(journal)
    by_id: dict[str, list[tuple[object, ...]]] = defaultdict(list)
    for row in rows:
        by_id[str(row[2])].append(row)
    keys = [row[9] for row in rows]
    assert len(keys) == len(set(keys)), f"an idempotency key was applied twice ({where})"

    for prefix, prefix_acks in acks.items():
        for ack in prefix_acks:
            found = by_id.get(ack.item_id, [])
            assert len(found) == 1, f"{ack} is in the journal {len(found)} times ({where})"
            (row,) = found
            assert (row[0], row[9]) == (ack.position, f"key-{ack.item_id}"), (row, ack, where)
        # The appender wrote its items in order: nothing beyond the one in flight.
        last = len(prefix_acks) - 1
        assert [ack.item_id for ack in prefix_acks] == [f"{prefix}-{n}" for n in range(last + 1)]
        written = sorted(
            int(item_id.rsplit("-", 1)[1])
            for item_id in by_id
            if item_id.rsplit("-", 1)[0] == prefix
        )
        assert written in (list(range(last + 1)), list(range(last + 2))), (written, where)

        # The command in flight when it died: retried with its key, applied exactly once.
        unknown = f"{prefix}-{last + 1}"
        was_applied = unknown in by_id
        retry = run_cqrs(
            exe,
            "item",
            "create",
            unknown,
            "-d",
            f"{unknown} retried",
            "--idempotency-key",
            f"key-{unknown}",
            "--json",
            env=child_env(),
        )
        assert retry.returncode == 0, (retry.stderr, where)
        outcome = json.loads(retry.stdout)
        assert outcome["already_applied"] is was_applied, (outcome, was_applied, where)
        assert outcome["item_id"] == unknown
        after = [row for row in event_rows(journal) if row[2] == unknown]
        assert len(after) == 1, f"{unknown} applied {len(after)} times ({where})"

    assert_journal_verifies(exe, journal)
    assert not [p.name for p in store.iterdir() if ".new-" in p.name], "leftover temporary files"


def crash_appenders(
    store: Path,
    exe: str,
    *,
    seed: int,
    rounds: int,
    max_processes: int,
    max_wait: float,
    max_size: int,
) -> None:
    print(f"seed {seed}")
    rng = random.Random(seed)
    with CommandService(store) as service:
        service.create_item("before-the-crashes")
    total = 0
    for number in range(rounds):
        processes = rng.randint(1, max_processes)
        acks = kill_appenders_at_random(store, rng, f"r{number}", processes, max_wait, max_size)
        total += sum(len(a) for a in acks.values())
        check_round(store, exe, acks, seed, f"round {number}, {processes} appenders")
    assert total >= rounds, "the appenders should have acknowledged events before dying"


def test_appenders_killed_at_random_lose_no_acknowledged_event(store: Path, cqrs_exe: str) -> None:
    crash_appenders(
        store, cqrs_exe, seed=20260601, rounds=3, max_processes=3, max_wait=0.3, max_size=2000
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 5))
def test_many_appenders_killed_at_random_lose_no_acknowledged_event(
    store: Path, cqrs_exe: str, seed: int
) -> None:
    # Descriptions up to 20 KB: the WAL reaches its auto-checkpoint size within a round,
    # so some kills land during a checkpoint.
    crash_appenders(
        store, cqrs_exe, seed=seed, rounds=12, max_processes=4, max_wait=1.2, max_size=20_000
    )


# --- Rebuilds killed while others read -------------------------------------------------------

State = tuple[int, int, int]  # checkpoint, live items, history rows

STATE_QUERY = (
    "SELECT (SELECT MIN(checkpoint) FROM projection_views), "
    "(SELECT COUNT(*) FROM items WHERE deleted = 0), (SELECT COUNT(*) FROM item_history)"
)

# A reader in a process of its own (one process, one handle on the projection: see
# test_reliability_load.py for what a second handle in the same process does): reads as
# fast as it can until the stop file appears, then prints what it saw. "sql" reads a
# whole state in one statement (one snapshot); "service" counts QueryService's items.
READER = f"""
import json, os, sqlite3, sys
from cqrs_cli import QueryService

home, kind, stop = sys.argv[1], sys.argv[2], sys.argv[3]
seen, errors, reads = set(), [], 0
if kind == "sql":
    conn = sqlite3.connect(
        f"file:{{home}}/projection.db?mode=ro", uri=True, isolation_level=None, timeout=30
    )
print("reading", flush=True)
while not os.path.exists(stop):
    try:
        if kind == "sql":
            seen.add(tuple(conn.execute({STATE_QUERY!r}).fetchone()))
        else:
            with QueryService(home) as queries:
                seen.add(len(queries.list_all_items()))
        reads += 1
    except Exception as exc:
        errors.append(f"{{type(exc).__name__}}: {{exc}}")
print(json.dumps({{"seen": sorted(seen), "errors": errors[:5], "reads": reads}}))
"""


def observe(projection: Path) -> State:
    conn = read_only(projection)
    try:
        checkpoint, live, history = conn.execute(STATE_QUERY).fetchone()
    finally:
        conn.close()
    return checkpoint, live, history


def expected_state(journal: Path) -> State:
    events = journal_events(journal)
    live = sum(1 for state in fold_journal(journal).values() if state.live)
    return events[-1].position, live, len(events)


class Readers:
    """Readers of the projection, each in a process of its own, reading as fast as they
    can until stopped: one through SQL (whole states, one snapshot each), one through
    QueryService (live item counts), and optionally a thread running `cqrs item list`
    over and over (line counts)."""

    def __init__(self, store: Path, exe: str, stop: Path, *, cli: bool) -> None:
        self.store = store
        self.exe = exe
        self.stop = stop
        self.states: set[State] = set()
        self.counts: set[int] = set()
        self.cli_counts: set[int] = set()
        self.errors: list[str] = []
        self.reads = 0
        self._children = [
            python_child(READER, str(store), kind, str(stop)) for kind in ("sql", "service")
        ]
        self._thread = threading.Thread(target=self._cli, daemon=True) if cli else None

    def __enter__(self) -> Readers:
        for child in self._children:
            assert child.stdout is not None
            assert child.stdout.readline() == "reading\n"
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.touch()
        if self._thread is not None:
            self._thread.join(SUBPROCESS_TIMEOUT)
        for kind, child in zip(("sql", "service"), self._children, strict=True):
            out, err = child.communicate(timeout=SUBPROCESS_TIMEOUT)
            if child.returncode != 0:
                self.errors.append(f"{kind} reader: {err}")
                continue
            report = json.loads(out)
            self.errors += [f"{kind} reader: {error}" for error in report["errors"]]
            self.reads += report["reads"]
            if kind == "sql":
                self.states |= {(c, live, h) for c, live, h in report["seen"]}
            else:
                self.counts |= set(report["seen"])

    def _cli(self) -> None:
        try:
            while not self.stop.exists():
                listed = run_cqrs(self.exe, "-q", "item", "list", env=child_env(self.store))
                assert listed.returncode == 0, listed.stderr
                self.cli_counts.add(len(listed.stdout.splitlines()))
        except Exception as exc:  # reported by the test, not lost in a thread
            self.errors.append(f"cli reader: {type(exc).__name__}: {exc}")


def rebuild_duration(exe: str, store: Path) -> float:
    """How long an uninterrupted `cqrs sync --rebuild` takes here (it leaves the
    projection as it was: rebuilt from the same journal)."""
    started = time.monotonic()
    result = run_cqrs(exe, "sync", "--rebuild", env=child_env(store))
    assert result.returncode == 0, result.stderr
    return time.monotonic() - started


def kill_rebuilds_while_reading(
    store: Path,
    exe: str,
    tmp_path: Path,
    *,
    seed: int,
    events: int,
    rounds: int,
    kills: int,
    cli_reader: bool,
) -> None:
    print(f"seed {seed}")
    rng = random.Random(seed)
    journal, projection = store / "journal.db", store / "projection.db"
    copy_of_random_journal(journal, events, items=events // 10, seed=seed)
    assert run_cqrs(exe, "sync", env=child_env(store)).returncode == 0
    duration = rebuild_duration(exe, store)
    for number in range(rounds):
        where = f"seed {seed}, round {number}"
        write_random_events(journal, events // 8, items=events // 10, seed=seed * 100 + number)
        old = observe(projection)
        new = expected_state(journal)
        assert old != new
        with Readers(store, exe, tmp_path / f"stop-{number}", cli=cli_reader) as readers:
            for _ in range(kills):
                rebuild = subprocess.Popen(
                    [exe, "sync", "--rebuild"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=child_env(store),
                )
                time.sleep(duration * rng.uniform(0.0, 1.3))
                rebuild.kill()
                rebuild.wait(timeout=SUBPROCESS_TIMEOUT)
            done = run_cqrs(exe, "sync", "--rebuild", env=child_env(store))
            assert done.returncode == 0, done.stderr
        assert not readers.errors, (readers.errors, where)
        assert readers.reads > 0
        assert readers.states <= {old, new}, (readers.states, old, new, where)
        assert observe(projection) == new, where
        assert readers.counts <= {old[1], new[1]}, (readers.counts, old, new, where)
        assert readers.cli_counts <= {old[1], new[1]}, (readers.cli_counts, where)
    assert_projection_is_exact(journal, projection, tmp_path)


def test_readers_never_see_a_partial_projection_while_rebuilds_are_killed(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    kill_rebuilds_while_reading(
        store, cqrs_exe, tmp_path, seed=7, events=3000, rounds=2, kills=3, cli_reader=False
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 4))
def test_readers_never_see_a_partial_projection_while_many_rebuilds_are_killed(
    store: Path, cqrs_exe: str, tmp_path: Path, seed: int
) -> None:
    kill_rebuilds_while_reading(
        store, cqrs_exe, tmp_path, seed=seed, events=20_000, rounds=4, kills=5, cli_reader=True
    )
