"""The catch-up lock and gate (cqrs_cli/sync/catchup_lock.py), step by step: a writer
claims the lock or marks its write pending, the holder syncs again while writes are
pending, the lock goes with its descriptor into a child and is freed when that child
dies, and only a projection this host has is caught up after writing to a server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from common import SUBPROCESS_TIMEOUT

from cqrs_cli.sync.catchup_lock import claim, finish, is_held, release, wanted


@pytest.fixture
def projection(tmp_path: Path) -> str:
    return str(tmp_path / "projection.db")


def test_one_claim_at_a_time_and_a_write_meanwhile_is_pending(projection: str) -> None:
    assert not is_held(projection)  # no files yet: nothing runs, and nothing is created
    assert not os.path.exists(projection + "-catchup")
    lock = claim(projection)
    assert lock is not None
    assert is_held(projection)
    assert claim(projection) is None  # a second writer: marked pending
    assert claim(projection) is None
    go_on, gate = finish(projection, lock)
    assert (go_on, gate) == (True, None)  # sync again, still holding the lock
    assert is_held(projection)
    go_on, gate = finish(projection, lock)
    assert go_on is False and gate is not None  # nothing pending: released
    release(gate)
    assert not is_held(projection)
    again = claim(projection)
    assert again is not None  # free for the next writer
    assert finish(projection, again)[0] is False


def test_the_gate_is_held_until_the_process_that_finished_is_gone(
    projection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = claim(projection)
    assert lock is not None
    go_on, gate = finish(projection, lock)
    assert not go_on and gate is not None
    # While the gate is held (as a finishing catch-up process holds it until its exit),
    # a writer waits for it rather than starting a catch-up beside the old one.
    from cqrs_cli.sync import catchup_lock

    monkeypatch.setattr(catchup_lock, "GATE_WAIT", 0.05)
    assert claim(projection) is None
    release(gate)
    fd = claim(projection)
    assert fd is not None
    release(fd)


def test_the_lock_goes_with_its_descriptor_and_dies_with_its_holder(projection: str) -> None:
    lock = claim(projection)
    assert lock is not None
    os.set_inheritable(lock, True)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        pass_fds=(lock,),
    )
    os.close(lock)  # the child's copy holds it now
    try:
        assert is_held(projection)
        assert claim(projection) is None
    finally:
        child.kill()  # killed at any instant: the kernel frees its locks
        child.wait(timeout=SUBPROCESS_TIMEOUT)
    assert not is_held(projection)
    fd = claim(projection)
    assert fd is not None
    release(fd)


def test_a_claim_where_no_file_can_be_made_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert claim(str(tmp_path / "file" / "projection.db")) is None


def test_writes_to_a_server_catch_up_only_a_projection_this_host_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CQRS_CATCHUP", "1")
    projection = tmp_path / "projection.db"
    journal = tmp_path / "journal.db"
    server = "postgresql://db.example/cqrs"
    assert not wanted(server, str(projection))
    assert not wanted(str(journal), str(projection))  # no journal: nothing was written
    journal.write_bytes(b"")
    assert wanted(str(journal), str(projection))  # made by the first catch-up
    projection.write_bytes(b"")
    assert wanted(server, str(projection))
    for off in ("0", "off", "No", "FALSE"):
        monkeypatch.setenv("CQRS_CATCHUP", off)
        assert not wanted(str(journal), str(projection))
