"""Faults from outside: a disk that fills up, a file locked by another process for longer
than the busy timeout, stdout that cannot be written (/dev/full) or whose reader went
away (`| head -1`), and a store the user may read but not write.

Each ends with a documented exit code and one line on stderr, never a traceback, and
leaves the journal as it was: an append either happened completely (and said so with
exit 0) or not at all."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from common import (
    SUBPROCESS_TIMEOUT,
    InProcessCli,
    child_env,
    event_count,
    event_rows,
    installed_cqrs,
    ndjson,
    one_error_line,
    run_cqrs,
)
from projection_helpers import assert_projection_is_exact, checkpoint_of, dump_projection
from reliability_helpers import (
    assert_clean_failure,
    assert_journal_verifies,
    can_drop_privileges,
    checkpoint_wal,
    file_size_limit,
    integrity_check,
    run_as_nobody,
)

from cqrs_cli import CommandService
from cqrs_cli.paths import StorePaths
from cqrs_cli.sync.runner import sync_projection


def small_store(store: Path, items: int = 20, *, synced: bool = True) -> None:
    """`items` items with 500-byte descriptions, synced; each file alone in its main file."""
    with CommandService(store) as service:
        for n in range(items):
            service.create_item(f"item-{n:03d}", f"description {n} " + "x" * 500)
    if synced:
        sync_projection(StorePaths.coerce(store))
        checkpoint_wal(store / "projection.db")
    checkpoint_wal(store / "journal.db")


def largest_file(path: Path) -> int:
    """The size of the database or its WAL, whichever is larger."""
    sizes = [os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists()]
    return max(sizes)


# --- Disk full ------------------------------------------------------------------------------------

BIG = b"big description " * 20_000  # 320 KB: dozens of new pages

FULL_DISK_WRITES = {
    "create": (("item", "create", "Big", "-d", "-"), BIG),
    "create-json": (("item", "create", "Big", "-d", "-", "--json"), BIG),
    "update": (("item", "update", "item-001", "-"), BIG),
    "apply": (
        ("apply",),
        ndjson(
            *({"op": "create", "id": f"batch-{n}", "description": "y" * 4000} for n in range(80))
        ),
    ),
}


@pytest.mark.parametrize(("argv", "stdin"), FULL_DISK_WRITES.values(), ids=FULL_DISK_WRITES.keys())
def test_a_write_on_a_full_disk_fails_cleanly_and_appends_nothing(
    store: Path, cqrs_exe: str, argv: tuple[str, ...], stdin: bytes
) -> None:
    small_store(store)
    journal = store / "journal.db"
    before = event_rows(journal)
    limit = largest_file(journal) + 4096

    full = run_cqrs(cqrs_exe, *argv, stdin=stdin, preexec_fn=file_size_limit(limit))

    assert_clean_failure(full, 7, str(journal))
    assert event_rows(journal) == before, "a failed append left events behind"
    assert_journal_verifies(cqrs_exe, journal)
    # With room again, the same write goes through.
    again = run_cqrs(cqrs_exe, *argv, stdin=stdin)
    assert again.returncode == 0, again.stderr
    assert event_rows(journal)[: len(before)] == before
    assert event_count(journal) > len(before)
    assert_journal_verifies(cqrs_exe, journal)


def test_exit_0_means_appended_and_exit_7_means_not_at_every_disk_size(
    store: Path, cqrs_exe: str
) -> None:
    """Limits half a page apart, so the disk fills at every stage of an append (WAL
    frames, commit, the checkpoint at close): each append is reported exactly as it
    happened, and the journal stays whole."""
    small_store(store, 5, synced=False)
    journal = store / "journal.db"
    description = b"d" * 30_000  # 8 pages
    outcomes = []
    for n in range(26):
        limit = largest_file(journal) + n * 2048
        before = event_count(journal)
        result = run_cqrs(
            cqrs_exe,
            "item",
            "create",
            f"limit-{n}",
            "-d",
            "-",
            stdin=description,
            preexec_fn=file_size_limit(limit),
        )
        created = [row for row in event_rows(journal) if row[2] == f"limit-{n}"]
        if result.returncode == 0:
            assert len(created) == 1 and event_count(journal) == before + 1
        else:
            assert_clean_failure(result, 7, str(journal))
            assert created == [] and event_count(journal) == before
        assert integrity_check(journal) == [("ok",)]
        outcomes.append(result.returncode)
    assert set(outcomes) == {0, 7}, f"the limits should both stop and allow appends: {outcomes}"
    assert_journal_verifies(cqrs_exe, journal)


def test_a_sync_on_a_full_disk_fails_cleanly_and_the_next_one_completes(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    small_store(store, 50)
    with CommandService(store) as service:
        for n in range(300):
            service.create_item(f"more-{n:03d}", "z" * 3000)
    projection = store / "projection.db"
    limit = largest_file(projection) + 300_000
    for argv in (("sync", "--batch-size", "40"), ("sync",), ("sync", "--rebuild")):
        result = run_cqrs(cqrs_exe, *argv, preexec_fn=file_size_limit(limit))
        assert_clean_failure(result, 7, str(projection))
        # What it committed before the disk filled is whole: the views agree.
        dump = dump_projection(projection)
        checkpoint = checkpoint_of(projection)
        history = dump["item_history"]
        assert isinstance(history, list)
        assert [row[0] for row in history] == list(range(1, checkpoint + 1))
    done = run_cqrs(cqrs_exe, "sync")
    assert done.returncode == 0, done.stderr
    assert_projection_is_exact(store / "journal.db", projection, tmp_path)


# --- A lock held past the busy timeout ------------------------------------------------------------

HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "exclusive":
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("COMMIT")  # the lock stays: exclusive locking mode keeps it
else:
    conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.close()
"""


class Lock:
    """Another process holding a lock on an SQLite file until released."""

    def __init__(self, path: Path, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "locked\n"

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=SUBPROCESS_TIMEOUT) == 0


@contextmanager
def held(path: Path, mode: str = "immediate") -> Iterator[Lock]:
    lock = Lock(path, mode)
    try:
        yield lock
    finally:
        if lock.process.poll() is None:
            lock.release()


BUSY = {"CQRS_BUSY_TIMEOUT": "0.3", "CQRS_SYNC_TIMEOUT": "0.3"}


def busy_env() -> dict[str, str]:
    """Waits of 0.3 s for a lock, for a journal or for another sync."""
    env = child_env()
    env.update(BUSY)
    return env


LOCKED_WRITES = {
    "create": (("item", "create", "New", "-d", "x"), b""),
    "update": (("item", "update", "item-001", "changed"), b""),
    "delete": (("item", "delete", "item-002"), b""),
    "create-json-key": (("item", "create", "New", "--json", "--idempotency-key", "k"), b""),
    "apply": (
        ("apply",),
        ndjson({"op": "create", "id": "New"}, {"op": "delete", "id": "item-003"}),
    ),
}


@pytest.mark.parametrize(("argv", "stdin"), LOCKED_WRITES.values(), ids=LOCKED_WRITES.keys())
def test_a_write_to_a_journal_locked_past_the_busy_timeout_exits_6_and_writes_nothing(
    store: Path,
    cqrs_exe: str,
    cli: InProcessCli,
    monkeypatch: pytest.MonkeyPatch,
    argv: tuple[str, ...],
    stdin: bytes,
) -> None:
    small_store(store, 5)
    journal = store / "journal.db"
    before = event_rows(journal)
    with held(journal) as lock:
        result = run_cqrs(cqrs_exe, *argv, stdin=stdin, env=busy_env())
        line = assert_clean_failure(result, 6, str(journal), "locked")
        assert "nothing was written" in line
        for name, value in BUSY.items():
            monkeypatch.setenv(name, value)
        code, out, err = cli(*argv, stdin=stdin)
        assert (code, out) == (6, ""), err
        assert str(journal) in one_error_line(err)
        assert event_rows(journal) == before
        lock.release()
    # Retrying once the lock is gone succeeds.
    again = run_cqrs(cqrs_exe, *argv, stdin=stdin, env=busy_env())
    assert again.returncode == 0, again.stderr
    assert event_count(journal) > len(before)


def test_a_sync_into_a_projection_locked_past_the_timeout_exits_6(
    store: Path, cqrs_exe: str
) -> None:
    small_store(store, 5)
    run_cqrs(cqrs_exe, "item", "create", "New")
    projection = store / "projection.db"
    before = dump_projection(projection)
    with held(projection):
        for argv in (("sync",), ("sync", "--rebuild"), ("item", "list", "--sync")):
            result = run_cqrs(cqrs_exe, *argv, env=busy_env())
            assert_clean_failure(result, 6, str(projection), "locked")
        # Readers are not blocked by a writer: they answer from the last commit.
        read = run_cqrs(cqrs_exe, "item", "get", "item-001", env=busy_env())
        assert read.returncode == 0, read.stderr
    assert dump_projection(projection) == before


def test_a_read_of_a_projection_locked_exclusively_exits_6(store: Path, cqrs_exe: str) -> None:
    small_store(store, 5)
    projection = store / "projection.db"
    with held(projection, "exclusive"):
        for argv in (("item", "get", "item-001"), ("item", "list"), ("item", "search", "x")):
            result = run_cqrs(cqrs_exe, *argv, env=busy_env())
            assert_clean_failure(result, 6, str(projection), "locked")


def test_a_sync_into_a_projection_locked_exclusively_exits_6(store: Path, cqrs_exe: str) -> None:
    small_store(store, 5)
    projection = store / "projection.db"
    with held(projection, "exclusive"):
        result = run_cqrs(cqrs_exe, "sync", env=busy_env())
        assert_clean_failure(result, 6, str(projection), "locked")


# --- stdout that cannot be written ----------------------------------------------------------------

FULL_STDOUT: dict[str, tuple[tuple[str, ...], list[pytest.MarkDecorator]]] = {
    "list": (("item", "list"), []),
    "list-json": (("item", "list", "--json"), []),
    "list-nl": (("item", "list", "--nl"), []),
    "get": (("item", "get", "item-001"), []),
    "history": (("item", "history", "item-001"), []),
    "search": (("item", "search", "description"), []),
    "events": (("events",), []),
    "status": (("status",), []),
    "verify": (("journal", "verify"), []),
    "export": (("journal", "export"), []),
    "sync": (("sync", "--rebuild"), []),
    "create-json": (("item", "create", "Written", "--json"), []),
    "create": (("item", "create", "Written"), []),
}


def params(cases: dict[str, tuple[tuple[str, ...], list[pytest.MarkDecorator]]]) -> list[object]:
    return [pytest.param(argv, id=name, marks=marks) for name, (argv, marks) in cases.items()]


def run_into_dev_full(exe: str, *argv: str) -> subprocess.CompletedProcess[bytes]:
    with open("/dev/full", "wb") as full:
        return subprocess.run(
            [exe, *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            env=child_env(),
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )


@pytest.mark.parametrize("argv", params(FULL_STDOUT))
def test_output_to_a_full_device_is_one_error_line_and_exit_1(
    store: Path, cqrs_exe: str, argv: tuple[str, ...]
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    small_store(store)
    before = event_count(store / "journal.db")
    result = run_into_dev_full(cqrs_exe, *argv)
    # main.py: stdout failing (a full disk, /dev/full) is reported as exit 1.
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert line.startswith("cqrs: error: cannot write output: "), line
    if argv[:2] == ("item", "create"):
        # The write was committed before its report failed: a retry with an idempotency
        # key is the safe way to find out.
        assert event_count(store / "journal.db") == before + 1
    else:
        assert event_count(store / "journal.db") == before


# --- A reader that goes away ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 items with long ids (all matching 'common') and one item with 2,000
    versions: every listing is far larger than a pipe's buffer."""
    home = tmp_path_factory.mktemp("big-store")
    commands = [
        {"op": "create", "id": f"item-{n:05d}-" + "x" * 40, "description": f"common {n}"}
        for n in range(3000)
    ]
    commands.append({"op": "create", "id": "Busy", "description": "version 1"})
    commands += [{"op": "update", "id": "Busy", "description": f"v {n}"} for n in range(2000)]
    env = child_env(home)
    exe = installed_cqrs()
    applied = run_cqrs(exe, "apply", stdin=ndjson(*commands), env=env)
    assert applied.returncode == 0, applied.stderr
    assert run_cqrs(exe, "sync", env=env).returncode == 0
    for name in ("journal.db", "projection.db"):
        checkpoint_wal(home / name)
    return home


@pytest.fixture
def big_store(store: Path, big_store_template: Path) -> Path:
    store.mkdir(parents=True, exist_ok=True)
    for name in ("journal.db", "projection.db"):
        shutil.copyfile(big_store_template / name, store / name)
    return store


def read_a_little_then_close(exe: str, *argv: str) -> tuple[int, bytes, bytes]:
    """`cqrs ARGV | head -1`: read the first line (at most 4 KB), close the pipe, and
    wait: (exit code, what was read, stderr)."""
    process = subprocess.Popen(
        [exe, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env()
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline(4096)
    process.stdout.close()
    err = process.stderr.read()
    return process.wait(timeout=SUBPROCESS_TIMEOUT), first, err


CLOSED_PIPE: dict[str, tuple[tuple[str, ...], list[pytest.MarkDecorator]]] = {
    "list": (("item", "list"), []),
    "list-nl": (("item", "list", "--nl"), []),
    "list-json": (("item", "list", "--json"), []),
    "list-limit": (("item", "list", "--limit", "100000", "--include-deleted"), []),
    "events": (("events",), []),
    "history": (("item", "history", "Busy"), []),
    "search": (("item", "search", "common", "--limit", "100000"), []),
    "export": (("journal", "export"), []),
}


@pytest.mark.parametrize("argv", params(CLOSED_PIPE))
def test_a_closed_pipe_ends_the_command_quietly_with_exit_0(
    big_store: Path, cqrs_exe: str, argv: tuple[str, ...]
) -> None:
    code, first, err = read_a_little_then_close(cqrs_exe, *argv)
    assert first, "the command printed nothing before the pipe closed"
    assert (code, err) == (0, b""), (code, err[-3000:])


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("item", "list"), id="list"),
        pytest.param(("item", "list", "--nl"), id="list-nl"),
        pytest.param(("events",), id="events"),
        pytest.param(("item", "history", "Busy"), id="history"),
    ],
)
def test_a_large_output_to_a_full_device_is_one_error_line(
    big_store: Path, cqrs_exe: str, argv: tuple[str, ...]
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    result = run_into_dev_full(cqrs_exe, *argv)
    assert result.returncode == 1
    assert one_error_line(result.stderr).startswith("cqrs: error: cannot write output: ")


# --- A store the user may read but not write ------------------------------------------------------


@pytest.fixture
def read_only_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A store made by root: folder 0755, files 0644, only the main files (no -wal or
    -shm), so that the user nobody can read the files but not write anything there.
    (pytest's own temporary folders are private to root: this one is made in /tmp.)"""
    if not can_drop_privileges():
        pytest.skip("needs root, to run a command as the user nobody")
    folder = Path(tempfile.mkdtemp(prefix="cqrs-read-only-"))
    try:
        folder.chmod(0o755)
        store = folder / "store"
        monkeypatch.setenv("CQRS_HOME", str(store))
        yield prepare_read_only_store(store)
    finally:
        shutil.rmtree(folder)


def prepare_read_only_store(store: Path) -> Path:
    small_store(store, 5)
    for leftover in store.iterdir():
        if leftover.name.endswith(("-wal", "-shm")):
            leftover.unlink()
    store.chmod(0o755)
    for name in ("journal.db", "projection.db"):
        (store / name).chmod(0o644)
    parent = store.parent
    while parent != parent.parent:  # nobody must be able to reach the folder
        if parent.stat().st_mode & 0o001 == 0:
            pytest.skip(f"{parent} is not searchable by other users")
        parent = parent.parent
    return store


def files_of(store: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(store.iterdir())}


def test_a_write_to_a_store_the_user_cannot_write_exits_7_naming_the_file(
    read_only_store: Path,
) -> None:
    before = files_of(read_only_store)
    journal = read_only_store / "journal.db"
    env = child_env()
    for argv in (
        ("item", "create", "New"),
        ("item", "update", "item-001", "changed"),
        ("item", "delete", "item-001"),
    ):
        result = run_as_nobody(*argv, env=env)
        assert_clean_failure(result, 7, str(journal))
    assert files_of(read_only_store) == before


def test_a_store_the_user_cannot_write_reads_as_it_is_without_side_files(
    read_only_store: Path,
) -> None:
    """SQLite needs a -shm file to read a WAL database and cannot create one in a folder
    the user may not write: reads of such a store open its files as immutable (nobody
    can write them here), answer in full, and leave nothing behind."""
    before = files_of(read_only_store)
    env = child_env()
    listed = run_as_nobody("item", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.decode().splitlines() == [f"item-{n:03d}" for n in range(5)]
    got = run_as_nobody("item", "get", "item-003", env=env)
    assert got.stdout.decode().startswith("item-003: description 3 "), got.stderr
    for argv in (
        ("item", "history", "item-001"),
        ("item", "search", "description"),
        ("status",),
        ("journal", "verify"),
        ("events",),
        ("item", "get", "item-001", "--at", "2"),
    ):
        result = run_as_nobody(*argv, env=env)
        assert result.returncode == 0, (argv, result.stderr)
        assert result.stdout, argv
    assert files_of(read_only_store) == before

    # With the -wal and -shm an earlier reader left (readable by all), reads work too,
    # through them.
    for name in ("journal.db", "projection.db"):
        conn = sqlite3.connect(f"file:{read_only_store / name}?mode=ro", uri=True)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        conn.close()
    for argv in (("item", "get", "item-001"), ("item", "list"), ("journal", "verify")):
        result = run_as_nobody(*argv, env=env)
        assert result.returncode == 0, result.stderr
    listed = run_as_nobody("item", "list", env=env)
    assert listed.stdout.decode().splitlines() == [f"item-{n:03d}" for n in range(5)]


def test_a_sync_into_a_projection_the_user_cannot_write_exits_7(read_only_store: Path) -> None:
    with CommandService(read_only_store) as service:  # as root: something to sync
        service.create_item("New")
    # The journal's -wal and -shm as a reader leaves them, so that nobody can read it.
    conn = sqlite3.connect(f"file:{read_only_store / 'journal.db'}?mode=ro", uri=True)
    conn.execute("SELECT COUNT(*) FROM events").fetchone()
    conn.close()
    assert run_as_nobody("journal", "verify", env=child_env()).returncode == 0
    result = run_as_nobody("sync", env=child_env())
    assert_clean_failure(result, 7, str(read_only_store / "projection.db"), "read-only")
