"""Primitives every family of tests shares (read side and sync, scripting, reliability):
running `cqrs` in this process or in others, running Python children and reading their
output, checking an error line, and reading a store's files the way any other program
would. Each has one version here; the *_helpers modules hold what only their tests use."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from queue import Empty, Queue
from typing import IO, Literal, NamedTuple, overload

import pytest

from cqrs_cli.journal.chain import GENESIS, event_hash
from cqrs_cli.journal.records import HASHED, RecordedEvent

SUBPROCESS_TIMEOUT = 60.0
"""Generous: other test runs may share the two cores."""

Arg = str | bytes
"""A command-line argument: bytes for one that is not valid UTF-8."""

CRASH_HOOK_ENV = "CQRS_TEST_CRASH_AT"
"""The test-only hook that makes `cqrs sync` kill itself (see test_sync_crash.py)."""


# --- cqrs in this process ------------------------------------------------------------------


class Output(NamedTuple):
    """What one in-process `cqrs` command did: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str


class InProcessCli:
    """`cqrs ARGV...` through `run()` in this process: Output(exit code, stdout, stderr).
    `stdin` (bytes) is what the command reads from a pipe. `run()` itself starts every
    command line from the default global options, as a new process would."""

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


# --- cqrs and Python in other processes ----------------------------------------------------


def installed_cqrs() -> str:
    """The `cqrs` console script of this environment (what the cqrs_exe fixture gives,
    for fixtures wider than one test)."""
    exe = Path(sys.executable).parent / "cqrs"
    assert exe.exists(), f"cqrs is not installed in {exe.parent}; run `make test`"
    return str(exe)


def child_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """This test's environment for a child process, without the sync crash hook;
    CQRS_HOME set to `home` when given, then every `extra` variable."""
    env = dict(os.environ)
    env.pop(CRASH_HOOK_ENV, None)
    if home is not None:
        env["CQRS_HOME"] = str(home)
    env.update(extra)
    return env


@overload
def run_cqrs(
    exe: str,
    *argv: Arg,
    stdin: bytes = ...,
    env: Mapping[str, str] | None = ...,
    preexec_fn: Callable[[], None] | None = ...,
    timeout: float = ...,
    text: Literal[False] = ...,
) -> subprocess.CompletedProcess[bytes]: ...


@overload
def run_cqrs(
    exe: str,
    *argv: Arg,
    stdin: bytes = ...,
    env: Mapping[str, str] | None = ...,
    preexec_fn: Callable[[], None] | None = ...,
    timeout: float = ...,
    text: Literal[True],
) -> subprocess.CompletedProcess[str]: ...


def run_cqrs(
    exe: str,
    *argv: Arg,
    stdin: bytes = b"",
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = SUBPROCESS_TIMEOUT,
    text: bool = False,
) -> subprocess.CompletedProcess[bytes] | subprocess.CompletedProcess[str]:
    """Run the installed `cqrs` in its own process: argv may hold bytes (invalid UTF-8),
    `stdin` is a pipe holding these bytes, the environment is child_env() unless given.
    stdout and stderr are bytes, or text with `text=True`."""
    return subprocess.run(
        [exe, *argv],
        input=stdin.decode() if text else stdin,
        capture_output=True,
        text=text,
        env=child_env() if env is None else dict(env),
        preexec_fn=preexec_fn,
        timeout=timeout,
        check=False,
    )


def python_child(
    script: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """A Python snippet in a process of its own, with this interpreter; text pipes for
    stdout and stderr; the environment is child_env() unless given."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env() if env is None else dict(env),
    )


def default_sigint() -> None:
    """For preexec_fn: a child started from a background job inherits SIGINT ignored,
    and Python then never raises KeyboardInterrupt. Give it the default disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
        """The next line; fails the test if none comes within `timeout` seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except Empty:
            raise AssertionError(f"no output within {timeout} s; so far: {self.seen}") from None
        self.seen.append(line)
        return line

    def drain(self) -> list[str]:
        """Every line so far, without waiting."""
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen

    def rest(self, timeout: float = SUBPROCESS_TIMEOUT) -> list[str]:
        """The lines not read yet, once the pipe is closed."""
        self._thread.join(timeout)
        rest: list[str] = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        self.seen += rest
        return rest


def wait_until(predicate: Callable[[], bool], timeout: float = SUBPROCESS_TIMEOUT) -> bool:
    """Poll `predicate` until it holds; False if it did not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


# --- What a command wrote -------------------------------------------------------------------


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


# --- A store's files as another program sees them ------------------------------------------


def read_only(path: str | Path) -> sqlite3.Connection:
    """A plain read-only connection, as any other program (sqlite3, Datasette) opens it."""
    quoted = str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, isolation_level=None, timeout=30)


def event_rows(path: str | Path) -> list[tuple[object, ...]]:
    """Every row of the journal's events table in position order; [] with no journal."""
    if not Path(path).exists():
        return []
    conn = read_only(path)
    try:
        return conn.execute("SELECT * FROM events ORDER BY position").fetchall()
    finally:
        conn.close()


def event_count(journal: str | Path) -> int:
    """How many events the journal holds (0 with no journal file)."""
    if not Path(journal).exists():
        return 0
    conn = read_only(journal)
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    finally:
        conn.close()
    assert isinstance(count, int)
    return count


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_chain_intact(events: Sequence[RecordedEvent]) -> None:
    """`events` (a whole journal, in position order) are chained from GENESIS: each one
    links to the previous event's hash or to its stream's previous event's (GENESIS for
    its first), and its own hash recomputes from its content."""
    prev = GENESIS
    stream_heads: dict[str, str] = {}
    for event in events:
        stream_prev = stream_heads.get(event.stream_id, GENESIS)
        assert event.prev_hash in (prev, stream_prev), f"broken link at position {event.position}"
        content = event.as_tuple()[HASHED]
        assert event.hash == event_hash(event.prev_hash, *content), f"bad hash at {event.position}"  # type: ignore[arg-type]
        prev = stream_heads[event.stream_id] = event.hash
