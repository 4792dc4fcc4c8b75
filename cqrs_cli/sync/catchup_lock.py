"""The catch-up lock: one catch-up after writes per projection at a time, and no write
left unsynced because a catch-up was already running when it committed.

Two flocks on files of their own beside the projection (a lock on the projection file
itself would be dropped by closing any descriptor of it: docs/architecture.md, Storage
rules 5):

- the **lock**, `<projection>-catchup`, held by the catch-up for its whole life;
- the **gate**, `<projection>-catchup.gate`, held for microseconds around each decision
  about the lock, with one byte in it: a write is *pending*.

A writer, once its events are committed, takes the gate and tries the lock. Free: it
takes it and hands the locked descriptor to a new catch-up (a detached process, or a
thread in a Python program), which holds it from then on. Held: it marks a write
pending. A catch-up, once synced, takes the gate: a pending write clears the mark and
the catch-up goes on; none, it releases the lock, and (a process) exits still holding
the gate, which the kernel releases after the process is gone. So every write either
started a catch-up or was seen by the one running, and a writer never starts a second
catch-up process while the previous one is still alive.

flock belongs to the open file description: a descriptor inherited by a child carries
the lock with it, and two descriptors opened in one process (two threads) exclude each
other. Nothing is held while idle: a catch-up with nothing pending ends.

This module is on every write's path: it imports only os, fcntl and time.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

ENV = "CQRS_CATCHUP"
"""`CQRS_CATCHUP=0` (or off, no, false) turns the catch-up after writes off."""
OFF_VALUES = frozenset({"0", "off", "no", "false"})
LOCK_SUFFIX = "-catchup"
GATE_SUFFIX = "-catchup.gate"
GATE_WAIT = 2.0
"""Seconds to wait for the gate, which is held for microseconds; past that (a process
stopped while holding it), a writer leaves the catch-up to the next write."""
_PENDING, _CLEAR = b"1", b"0"


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether writes start a catch-up (CQRS_CATCHUP is not set to 0, off, no, false)."""
    env = os.environ if environ is None else environ
    return env.get(ENV, "").strip().lower() not in OFF_VALUES


def wanted(journal: str, projection: str) -> bool:
    """Whether a write to `journal` should catch `projection` up: the catch-up is on, and
    either the journal is a file here (its projection is made on the first catch-up,
    as `cqrs sync` makes it) or, for a journal elsewhere (a server's URL), this host
    has a projection of it already: a writer host with none is not given one."""
    if not enabled():
        return False
    if "://" in journal:
        return os.path.exists(projection)
    return os.path.exists(journal)  # none: nothing was written (a refused first batch)


def lock_path(projection: str) -> str:
    return projection + LOCK_SUFFIX


def gate_path(projection: str) -> str:
    return projection + GATE_SUFFIX


def _open(path: str, *, create: bool = True) -> int | None:
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        if not create:
            return None
        # No folder yet (a projection named somewhere new): the sync would create it.
        try:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            return os.open(path, flags, 0o600)
        except OSError:
            return None
    except OSError:
        return None  # a read-only folder: no catch-up could write a projection there


def _take(fd: int, *, wait: bool) -> bool:
    import fcntl

    if not wait:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True
    import time

    deadline = time.monotonic() + GATE_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0002)
        except OSError:
            return False


def release(fd: int) -> None:
    """Release a lock or gate and close its descriptor. Released explicitly, not by the
    close: a copy of the descriptor in a child forked meanwhile would keep it held."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def claim(projection: str) -> int | None:
    """For a writer whose events are committed: the descriptor of the catch-up lock, now
    held, for a new catch-up to take over; or None, when a catch-up is running (this
    write is marked pending for it) or the files cannot be made."""
    gate = _open(gate_path(projection))
    if gate is None:
        return None
    try:
        if not _take(gate, wait=True):
            return None
        lock = _open(lock_path(projection))
        if lock is None:
            return None
        if _take(lock, wait=False):
            return lock
        os.close(lock)
        os.pwrite(gate, _PENDING, 0)
        return None
    except OSError:
        return None
    finally:
        release(gate)


def finish(projection: str, lock: int) -> tuple[bool, int | None]:
    """For the catch-up holding `lock`, synced: (True, None) if a write is pending (the
    mark is cleared; sync again, still holding the lock). Else (False, gate): the lock
    is released and closed, and `gate` is the gate's descriptor, still held (None if it
    could not be taken): a process exits holding it, a thread releases it (release())."""
    gate = _open(gate_path(projection))
    if gate is not None and not _take(gate, wait=True):
        os.close(gate)
        gate = None
    if gate is not None:
        try:
            if os.pread(gate, 1, 0) == _PENDING:
                os.pwrite(gate, _CLEAR, 0)
                release(gate)
                return True, None
        except OSError:
            pass
    release(lock)
    return False, gate


def is_held(projection: str) -> bool:
    """Whether a catch-up holds the lock now (for `cqrs status`). Asked under the gate, so
    that the moment this holds the lock itself no writer can take it for a catch-up;
    never creates the files."""
    gate = _open(gate_path(projection), create=False)
    if gate is None:
        return False
    try:
        if not _take(gate, wait=True):
            return True  # the gate stays taken: someone is deciding, or stopped doing it
        lock = _open(lock_path(projection), create=False)
        if lock is None:
            return False
        if _take(lock, wait=False):
            release(lock)
            return False
        os.close(lock)
        return True
    finally:
        release(gate)
