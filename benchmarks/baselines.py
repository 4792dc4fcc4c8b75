"""The baselines: each job done the straightforward way in plain sqlite3.

They use the journal's own `events` table (copied below; `check_schema_matches` fails
the run if the copy drifts from cqrs's schema), WAL and synchronous=FULL like the
journal, and their rows are prepared before the clock starts: a baseline is what the
storage costs, so that a ratio to it is what cqrs adds on top.
"""

from __future__ import annotations

import json
import sqlite3
import time

from .fixtures import INSERT, created_rows, journal_rows
from .tasks import TaskResult, TaskSpec

# Copied from cqrs_cli/journal/sqlite_journal.py (the events table and its index).
EVENTS_DDL = """
CREATE TABLE events (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    command_id      TEXT    NOT NULL,
    idempotency_key TEXT,
    correlation_id  TEXT,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_by_idempotency_key ON events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""

PROJECTION_DDL = """
CREATE TABLE items (
    item_id     TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    version     INTEGER NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE item_history (
    position    INTEGER PRIMARY KEY,
    item_id     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    description TEXT,
    recorded_at TEXT NOT NULL
);
CREATE INDEX item_history_by_item ON item_history (item_id, version);
CREATE TABLE checkpoint (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT INTO checkpoint (id, position) VALUES (1, 0);
"""

PROJECTION_BATCH = 1000
"""Events per projection transaction."""


def _shape(conn: sqlite3.Connection) -> tuple[object, ...]:
    columns = conn.execute("PRAGMA table_info(events)").fetchall()
    indexes = [row[1:] for row in conn.execute("PRAGMA index_list(events)").fetchall()]
    return tuple(columns), tuple(sorted(indexes, key=repr))


def check_schema_matches(journal: sqlite3.Connection) -> None:
    """Fail if EVENTS_DDL no longer describes the journal's events table."""
    copy = sqlite3.connect(":memory:")
    try:
        copy.executescript(EVENTS_DDL)
        if _shape(copy) != _shape(journal):
            raise RuntimeError(
                "benchmarks/baselines.py EVENTS_DDL differs from the journal's events "
                "table: copy the CREATE TABLE from cqrs_cli/journal/sqlite_journal.py"
            )
    finally:
        copy.close()


def open_events_db(path: str) -> sqlite3.Connection:
    """A new file with the journal's events table, set up as the journal is."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    conn.executescript(EVENTS_DDL)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def append_per_transaction(spec: TaskSpec) -> TaskResult:
    """One event per transaction: BEGIN IMMEDIATE; INSERT; COMMIT."""
    rows = journal_rows(spec.events + 1, chained=False)
    conn = open_events_db(spec.path("plain-append"))
    execute = conn.execute
    execute(INSERT, rows.pop())  # warm-up: statement cache, file pages
    start = time.perf_counter()
    for row in rows:
        execute("BEGIN IMMEDIATE")
        execute(INSERT, row)
        execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return TaskResult(len(rows), seconds, {"synchronous": "FULL", "journal_mode": "WAL"})


def executemany_batch(spec: TaskSpec) -> TaskResult:
    """All events in one transaction: BEGIN IMMEDIATE; executemany(INSERT); COMMIT.
    The rows are the ones cqrs writes for the apply row's creates (fixtures.created_rows)."""
    rows = created_rows(spec.events)
    conn = open_events_db(spec.path("plain-batch"))
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT, rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - start
    conn.close()
    return TaskResult(len(rows), seconds)


def read_in_order(spec: TaskSpec) -> TaskResult:
    """SELECT * FROM events ORDER BY position, iterating every row."""
    conn = sqlite3.connect(f"file:{spec.source}?mode=ro", uri=True, isolation_level=None)
    start = time.perf_counter()
    count = 0
    for _row in conn.execute("SELECT * FROM events ORDER BY position"):
        count += 1
    seconds = time.perf_counter() - start
    conn.close()
    return TaskResult(count, seconds)


def project(spec: TaskSpec) -> TaskResult:
    """The straightforward projection: for each batch of 1,000 journal events, one
    transaction that reads the checkpoint, writes each event to `items` and to the
    indexed `item_history`, and moves the checkpoint."""
    return _project(spec, split=False)


def project_second_half(spec: TaskSpec) -> TaskResult:
    """The straightforward projection of the same split as the incremental sync row:
    the journal's first half projected untimed, exactly as `project` does it, then the
    second half timed."""
    return _project(spec, split=True)


def _project(spec: TaskSpec, *, split: bool) -> TaskResult:
    journal = sqlite3.connect(f"file:{spec.source}?mode=ro", uri=True, isolation_level=None)
    view = sqlite3.connect(spec.path("plain-projection"), isolation_level=None, timeout=5)
    view.executescript(PROJECTION_DDL)
    view.execute("PRAGMA journal_mode = WAL")
    (synchronous,) = view.execute("PRAGMA synchronous").fetchone()
    (head,) = journal.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()
    if split:
        _project_batches(journal, view, head // 2)
    start = time.perf_counter()
    count = _project_batches(journal, view, head)
    seconds = time.perf_counter() - start
    journal.close()
    view.close()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return TaskResult(count, seconds, {"synchronous": names.get(synchronous, str(synchronous))})


def _project_batches(journal: sqlite3.Connection, view: sqlite3.Connection, up_to: int) -> int:
    """Project the events after the checkpoint up to position `up_to`, 1,000 a
    transaction; how many there were."""
    read = journal.execute
    write = view.execute
    count = 0
    while True:
        write("BEGIN IMMEDIATE")
        (checkpoint,) = write("SELECT position FROM checkpoint WHERE id = 1").fetchone()
        batch = read(
            "SELECT position, stream_id, stream_version, event_type, data, recorded_at "
            "FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT ?",
            (checkpoint, up_to, PROJECTION_BATCH),
        ).fetchall()
        if not batch:
            write("ROLLBACK")
            return count
        for position, item_id, version, event_type, data, recorded_at in batch:
            text = json.loads(data).get("description")
            if event_type == "ItemCreated":
                write(
                    "INSERT INTO items (item_id, description, version, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (item_id, text, version, recorded_at, recorded_at),
                )
            elif event_type == "ItemUpdated":
                write(
                    "UPDATE items SET description = ?, version = ?, updated_at = ? "
                    "WHERE item_id = ?",
                    (text, version, recorded_at, item_id),
                )
            else:
                write(
                    "UPDATE items SET deleted = 1, version = ?, updated_at = ? WHERE item_id = ?",
                    (version, recorded_at, item_id),
                )
            write(
                "INSERT INTO item_history VALUES (?, ?, ?, ?, ?, ?)",
                (position, item_id, version, event_type, text, recorded_at),
            )
        write("UPDATE checkpoint SET position = ? WHERE id = 1", (batch[-1][0],))
        write("COMMIT")
        count += len(batch)
