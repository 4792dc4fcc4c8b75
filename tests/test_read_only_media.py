"""A store on a read-only medium: a file system mounted read-only after the store was
made (a backup disk, a CD image, a container's read-only volume).

Reads answer from the files as they are, `sync` and writes exit 7 with one line. The
medium is real: a tmpfs mounted here and remounted read-only (root only, and only
where mounting is allowed: skipped otherwise, saying why). chmod would prove nothing,
since the tests run as root; tests/test_reliability_faults.py covers a folder the user
may not write, as the user nobody.

The traps: SQLite refuses to read a WAL database whose -shm file it can neither open
nor create ("unable to open database file"), and `immutable=1`, which reads without
it, silently ignores commits still in the -wal file."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import child_env, installed_cqrs, run_cqrs
from reliability_helpers import assert_clean_failure, checkpoint_wal

from cqrs_cli import CommandService
from cqrs_cli.paths import StorePaths
from cqrs_cli.sqlitefile import connect, unwritable_reason
from cqrs_cli.sync.runner import sync_projection


class Medium:
    """A tmpfs mounted at `path`, to be made read-only and writable again."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def remount(self, *, read_only: bool) -> None:
        mode = "ro" if read_only else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)


def _mount(path: Path) -> str | None:
    """Mount a small tmpfs at `path`; None, or why it could not be done here."""
    if os.geteuid() != 0:
        return "needs root to mount a file system"
    if shutil.which("mount") is None:
        return "no mount command"
    tried = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if tried.returncode != 0:
        return f"mounting a tmpfs is not permitted here: {tried.stderr.strip()}"
    for mode in ("ro", "rw"):  # and remounting it, both ways
        tried = subprocess.run(
            ["mount", "-o", f"remount,{mode}", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if tried.returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)
            return f"remounting a tmpfs {mode} is not permitted here: {tried.stderr.strip()}"
    return None


@pytest.fixture
def medium() -> Iterator[Medium]:
    folder = Path(tempfile.mkdtemp(prefix="cqrs-medium-"))
    why = _mount(folder)
    if why is not None:
        folder.rmdir()
        pytest.skip(why)
    try:
        yield Medium(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()


def cqrs(store: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return run_cqrs(installed_cqrs(), *argv, env=child_env(store), text=True)


def make_store(store: Path) -> None:
    """Three items, one of them changed after the last sync; closed cleanly, so each
    file is alone, with no -wal or -shm beside it."""
    with CommandService(store) as service:
        service.create_item("A1", "hello")
        service.create_item("A2", "world")
    sync_projection(StorePaths.coerce(store))
    with CommandService(store) as service:
        service.update_item("A1", "hello again")


READS = (
    ("item", "get", "A1"),
    ("item", "get", "A1", "--json"),
    ("item", "list"),
    ("item", "list", "--nl"),
    ("item", "history", "A1"),
    ("item", "search", "wor"),
    ("status", "--json"),
    ("events",),
    ("journal", "verify"),
    ("item", "get", "A1", "--at", "3"),
)


def test_every_read_answers_on_a_read_only_medium_as_it_did_before(medium: Medium) -> None:
    store = medium.path / "store"
    make_store(store)
    before = {argv: cqrs(store, *argv) for argv in READS}
    for name in ("journal.db", "projection.db"):
        checkpoint_wal(store / name)  # the last to close: it removes the -wal and -shm
    files = sorted(os.listdir(store))
    assert files == ["journal.db", "projection.db"]  # the case SQLite cannot open
    medium.remount(read_only=True)

    for argv in READS:
        result = cqrs(store, *argv)
        assert result.returncode == 0, (argv, result.stderr)
        expected = before[argv].stdout
        if argv[0] == "status":  # the same, but for nothing
            assert json.loads(result.stdout) == json.loads(expected)
        else:
            assert result.stdout == expected, argv
        assert result.stderr == before[argv].stderr, argv
    assert cqrs(store, "item", "get", "A1").stdout == "A1: hello\n"  # behind, and says so
    assert sorted(os.listdir(store)) == files


def test_sync_and_writes_on_a_read_only_medium_exit_7_in_one_line(medium: Medium) -> None:
    store = medium.path / "store"
    make_store(store)
    medium.remount(read_only=True)
    projection = str(store / "projection.db")
    for argv in (("sync",), ("sync", "--rebuild"), ("item", "get", "A1", "--sync")):
        result = run_cqrs(installed_cqrs(), *argv, env=child_env(store))
        line = assert_clean_failure(result, 7, projection, "read-only")
        assert "cannot bring the projection up to date" in line
    result = run_cqrs(installed_cqrs(), "item", "create", "B1", env=child_env(store))
    assert_clean_failure(result, 7, str(store / "journal.db"), "read-only")
    # A projection that does not exist yet cannot be made there either.
    elsewhere = str(medium.path / "new.db")
    env = child_env(store, CQRS_PROJECTION=elsewhere)
    result = run_cqrs(installed_cqrs(), "sync", env=env)
    assert_clean_failure(result, 7, elsewhere, "read-only file system")


def test_commits_still_in_the_write_ahead_log_are_read(medium: Medium) -> None:
    """A store whose last writer died before checkpointing keeps commits in its -wal
    file: an immutable reader would not see them; a read on the medium must."""
    store = medium.path / "store"
    make_store(store)
    script = (
        "import os, sqlite3, sys\n"
        "from cqrs_cli import CommandService, QueryService\n"
        "held = [sqlite3.connect(os.path.join(sys.argv[1], name))  # open to the end:\n"
        "        for name in ('journal.db', 'projection.db')]  # their close would checkpoint\n"
        "for conn in held:\n"
        "    conn.execute('SELECT COUNT(*) FROM sqlite_master').fetchone()\n"
        "CommandService(sys.argv[1]).create_item('W1', 'only in the WAL')\n"
        "QueryService(sys.argv[1]).sync()\n"
        "os._exit(0)  # as a killed process: -wal and -shm stay\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(store)], env=child_env(), timeout=60, check=True
    )
    assert os.path.getsize(store / "journal.db-wal") > 0
    medium.remount(read_only=True)
    assert cqrs(store, "item", "get", "W1").stdout == "W1: only in the WAL\n"
    assert "W1" in cqrs(store, "item", "list").stdout.split()
    assert cqrs(store, "journal", "verify").returncode == 0
    events = cqrs(store, "events").stdout.splitlines()
    assert json.loads(events[-1])["stream_id"] == "W1"


def test_a_write_ahead_log_without_its_shm_file_is_refused_not_read_stale(
    medium: Medium,
) -> None:
    store = medium.path / "store"
    make_store(store)
    journal = store / "journal.db"
    # Commits in the -wal, and no -shm (copied without it, say): SQLite cannot read
    # them without creating one, and ignoring them would show an older journal.
    holder = sqlite3.connect(journal, isolation_level=None)  # keeps the WAL from a checkpoint
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.execute("SELECT COUNT(*) FROM events").fetchone()
    with CommandService(store) as service:
        service.create_item("W1", "in the WAL")
    main, wal = journal.read_bytes(), (store / "journal.db-wal").read_bytes()
    holder.close()
    for leftover in store.iterdir():
        if leftover.name.startswith("journal.db"):
            leftover.unlink()
    journal.write_bytes(main)
    (store / "journal.db-wal").write_bytes(wal)
    assert wal
    medium.remount(read_only=True)
    for argv in (("events",), ("item", "get", "A1"), ("journal", "verify")):
        result = run_cqrs(installed_cqrs(), *argv, env=child_env(store))
        line = assert_clean_failure(result, 7, str(journal), "journal.db-shm")
        assert "read-only file system" in line


def test_sync_reads_a_journal_on_a_read_only_medium_into_a_writable_projection(
    medium: Medium, tmp_path: Path
) -> None:
    store = medium.path / "store"
    make_store(store)
    medium.remount(read_only=True)
    env = child_env(store, CQRS_PROJECTION=str(tmp_path / "projection.db"))
    # The first sync builds in bulk over the journal ATTACHed (immutable, as it must).
    first = run_cqrs(installed_cqrs(), "sync", env=env, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "Synced 3 events (position 0 -> 3)\n"
    got = run_cqrs(installed_cqrs(), "item", "get", "A1", env=env, text=True)
    assert got.stdout == "A1: hello again\n"


def test_a_writable_store_is_never_read_as_immutable(tmp_path: Path) -> None:
    """immutable=1 is only for files nobody can write: a reader of a writable store
    uses the WAL (an immutable connection reports journal_mode 'delete')."""
    store = tmp_path / "store"
    make_store(store)
    for name in ("journal.db", "projection.db"):
        path = str(store / name)
        assert unwritable_reason(path) is None
        conn = connect(path, readonly=True)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            conn.close()
