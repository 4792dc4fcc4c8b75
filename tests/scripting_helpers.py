"""Helpers specific to the tests of the scripting features (`cqrs apply`, `cqrs events`,
`cqrs journal ...`, time travel): waiting for a follower to idle, reading NDJSON output,
a journal's whole content and id, and tampering with a journal's events as an attacker
with file access would. What every family of tests uses is in common.py."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from common import SUBPROCESS_TIMEOUT, read_only

from cqrs_cli.journal.chain import GENESIS, event_hash


def wait_until_sleeping(pid: int, timeout: float = SUBPROCESS_TIMEOUT) -> None:
    """Wait until the process `pid` is inside a sleep (a poll loop's `time.sleep`): it is
    then past its imports and start-up, in the loop itself. Skips where /proc/PID/wchan
    is not available."""
    wchan = Path(f"/proc/{pid}/wchan")
    if not wchan.exists():
        pytest.skip("no /proc/PID/wchan to see that the process is idle")
    deadline = time.monotonic() + timeout
    while "nanosleep" not in wchan.read_text():
        assert time.monotonic() < deadline, f"process {pid} never went idle"
        time.sleep(0.02)


def json_lines(text: str) -> list[dict[str, object]]:
    """The JSON documents of an NDJSON text, one per line; every line must be one."""
    assert text == "" or text.endswith("\n"), repr(text[-200:])
    return [json.loads(line) for line in text.splitlines()]


# --- The journal file as another program sees it ------------------------------------------


def journal_content(path: str | Path) -> list[str] | None:
    """The journal's whole logical content (schema, events, metadata, the position
    counter) as SQL text: equal before and after means nothing was written. The file's
    bytes are not compared: opening it may touch WAL bookkeeping. None with no file."""
    if not Path(path).exists():
        return None
    conn = read_only(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def journal_id(path: str | Path) -> str:
    """The journal's id, as its journal_meta table holds it."""
    conn = read_only(path)
    try:
        (value,) = conn.execute(
            "SELECT value FROM journal_meta WHERE key = 'journal_id'"
        ).fetchone()
    finally:
        conn.close()
    return str(value)


EVENT_TRIGGERS = ("events_append_only_update", "events_append_only_delete")


def tamper(path: str | Path, edit: Callable[[sqlite3.Connection], None]) -> None:
    """Edit the journal's events with plain SQL, as an attacker with file access would:
    drop the append-only triggers, run `edit`, and put the triggers back."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'"
        ).fetchall()
        assert sorted(name for name, _ in triggers) == sorted(EVENT_TRIGGERS)
        conn.execute("BEGIN IMMEDIATE")
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        edit(conn)
        for _, sql in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


def run_sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    """An edit for `tamper` that runs these SQL statements in order."""

    def edit(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return edit


def swap_positions(a: int, b: int) -> Callable[[sqlite3.Connection], None]:
    """Two events exchange their positions (through a temporary one)."""
    return run_sql(
        f"UPDATE events SET position = -1 WHERE position = {a}",
        f"UPDATE events SET position = {a} WHERE position = {b}",
        f"UPDATE events SET position = {b} WHERE position = -1",
    )


def rechain(conn: sqlite3.Connection, start: int) -> None:
    """Recompute prev_hash and hash of every event from position `start` on, so that
    the hash chain is intact again after an edit: what a careful forger would do."""
    before = conn.execute(
        "SELECT hash FROM events WHERE position < ? ORDER BY position DESC LIMIT 1", (start,)
    ).fetchone()
    prev = before[0] if before else GENESIS
    rows = conn.execute(
        "SELECT position, event_id, stream_id, stream_version, event_type, schema_version, "
        "data, recorded_at, command_id, idempotency_key, correlation_id FROM events "
        "WHERE position >= ? ORDER BY position",
        (start,),
    ).fetchall()
    for position, *fields in rows:
        digest = event_hash(prev, *fields)
        conn.execute(
            "UPDATE events SET prev_hash = ?, hash = ? WHERE position = ?",
            (prev, digest, position),
        )
        prev = digest


def lines_of(text: str | bytes) -> list[bytes]:
    """A text's lines, with their line ends, as a file iterator yields them."""
    data = text.encode() if isinstance(text, str) else text
    return data.splitlines(keepends=True)
