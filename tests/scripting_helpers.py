"""Helpers shared by the tests of the scripting features (`cqrs apply`, `cqrs events`,
`cqrs journal ...`, time travel, start-up imports): running `cqrs` in this process or in
others, reading a journal file the way any other program would, and tampering with one."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from queue import Empty, Queue
from typing import IO, NamedTuple

import pytest

from cqrs_cli.journal.chain import GENESIS, event_hash

SUBPROCESS_TIMEOUT = 60.0
"""Generous: other test runs may share the two cores."""


class Output(NamedTuple):
    code: int
    out: str
    err: str


class InProcessCli:
    """`cqrs ARGV...` through `run()` in this process: Output(exit code, stdout, stderr).
    `stdin` (bytes) is what the command reads from a pipe."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch

    def __call__(self, *argv: str, stdin: bytes | None = None) -> Output:
        from cqrs_cli.cli.main import run

        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        self.capsys.readouterr()
        code = run(list(argv))
        out, err = self.capsys.readouterr()
        return Output(code, out, err)


def cqrs_process(
    exe: str,
    *argv: str,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    timeout: float = SUBPROCESS_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed `cqrs` in a process of its own (environment: this test's)."""
    return subprocess.run(
        [exe, *argv], input=stdin, capture_output=True, env=env, timeout=timeout, check=False
    )


def default_sigint() -> None:
    """For preexec_fn: a child started from a background job inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt. Give it the default disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


class LineReader:
    """The lines of a child's pipe, read by a thread, so that a test can wait for the
    next one with a timeout."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: Queue[str] = Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.lines.put(line.rstrip("\n"))

    def next_line(self, timeout: float = SUBPROCESS_TIMEOUT) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except Empty:
            raise AssertionError(f"no output within {timeout} s; so far: {self.seen}") from None
        self.seen.append(line)
        return line

    def rest(self, timeout: float = SUBPROCESS_TIMEOUT) -> list[str]:
        """The lines not read yet, once the pipe is closed."""
        self._thread.join(timeout)
        rest: list[str] = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        self.seen += rest
        return rest


def one_error_line(err: str | bytes, starts: str = "cqrs: error: ") -> str:
    """stderr is exactly one line starting with `starts`, with no traceback; that line."""
    text = err.decode("utf-8", "replace") if isinstance(err, bytes) else err
    assert "Traceback" not in text, text
    assert text.endswith("\n") and text.count("\n") == 1, repr(text[:2000])
    assert text.startswith(starts), repr(text[:2000])
    return text


def ndjson(*records: Mapping[str, object]) -> bytes:
    """Records as NDJSON bytes, one per line."""
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def json_lines(text: str) -> list[dict[str, object]]:
    """The JSON documents of an NDJSON text, one per line; every line must be one."""
    assert text == "" or text.endswith("\n"), repr(text[-200:])
    return [json.loads(line) for line in text.splitlines()]


# --- The journal file as another program sees it ------------------------------------------


def read_only(path: str | Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)


def event_rows(path: str | Path) -> list[tuple[object, ...]]:
    """Every row of the journal's events table in position order; [] with no journal."""
    if not Path(path).exists():
        return []
    conn = read_only(path)
    try:
        return conn.execute("SELECT * FROM events ORDER BY position").fetchall()
    finally:
        conn.close()


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
    conn = read_only(path)
    try:
        (value,) = conn.execute(
            "SELECT value FROM journal_meta WHERE key = 'journal_id'"
        ).fetchone()
    finally:
        conn.close()
    return str(value)


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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


def wait_for(predicate: Callable[[], bool], timeout: float = SUBPROCESS_TIMEOUT) -> None:
    """Poll until `predicate` holds; fail the test if it does not within `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def lines_of(text: str | bytes) -> list[bytes]:
    """A text's lines, with their line ends, as a file iterator yields them."""
    data = text.encode() if isinstance(text, str) else text
    return data.splitlines(keepends=True)
