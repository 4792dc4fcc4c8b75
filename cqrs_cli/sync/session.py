"""Catch-up after writes in a Python program, and its session consistency.

A CommandService in a long-running program cannot leave a process behind as the CLI
does (the program would have to reap it), so after each write it starts the catch-up
in a thread of its own process, under the same lock as the CLI's catch-ups
(catchup_lock.py): one catch-up per projection, across threads and processes.

Session consistency (read-your-writes inside a process, eventual across processes):
each write records the position it reached for its projection here, and a
QueryService of the same process waits, within a bound, until the projection has
reached the highest position this process wrote (`own_position`). The catch-up that
gets it there may be this process's thread or another process's catch-up holding the
lock: it took the lock after the write, or it re-checks after releasing it.

At exit, the program waits up to EXIT_WAIT seconds for a catch-up thread still running,
so that a short script leaves a projection that holds its writes; past that, the thread
is stopped with the interpreter (as a kill would: the batch in flight rolls back).
"""

from __future__ import annotations

import os
import threading
import time

from .catchup_lock import claim, release, wanted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..paths import StorePaths

EXIT_WAIT = 5.0

_guard = threading.Lock()
_written: dict[str, int] = {}
"""Per projection (absolute path): the highest position a write of this process reached."""
_failed: dict[str, int] = {}
"""Per projection: the highest position written when this process's catch-up failed."""
_threads: set[threading.Thread] = set()
_exit_hook = False


def _key(projection: str) -> str:
    return os.path.abspath(projection)


def after_write(paths: StorePaths, position: int) -> None:
    """A write of this process reached `position`: remember it for this process's
    queries, and start a catch-up thread unless a catch-up holds the lock."""
    if not wanted(paths.journal, paths.projection):
        return
    key = _key(paths.projection)
    with _guard:
        _written[key] = max(_written.get(key, 0), position)
    fd = claim(paths.projection)
    if fd is None:
        return
    thread = threading.Thread(target=_run, args=(paths, fd, key), name="cqrs-catch-up", daemon=True)
    with _guard:
        _threads.add(thread)
        _register_exit_wait()
    try:
        thread.start()
    except BaseException:
        # No thread to be had: give the lock back, or no catch-up could ever run again
        # while this process lives.
        with _guard:
            _threads.discard(thread)
        release(fd)
        raise


def _run(paths: StorePaths, fd: int, key: str) -> None:
    from .catchup import catch_up_holding

    try:
        error, gate = catch_up_holding(paths, fd)
        if gate is not None:
            release(gate)
        if error is not None:
            with _guard:
                _failed[key] = _written.get(key, 0)
    finally:
        with _guard:
            _threads.discard(threading.current_thread())


def own_position(projection: str) -> int:
    """The highest position this process wrote for `projection` (0: none)."""
    return _written.get(_key(projection), 0) if _written else 0


def gave_up(projection: str, position: int) -> bool:
    """Whether this process's catch-up failed after `position` was written: waiting for
    it is pointless then."""
    return _failed.get(_key(projection), 0) >= position > 0


def _register_exit_wait() -> None:
    global _exit_hook
    if not _exit_hook:
        import atexit

        atexit.register(wait_for_catch_ups, EXIT_WAIT)
        _exit_hook = True


def wait_for_catch_ups(timeout: float) -> bool:
    """Wait up to `timeout` seconds for this process's catch-up threads; whether they
    all ended."""
    deadline = time.monotonic() + timeout
    while True:
        with _guard:
            running = list(_threads)
        if not running:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        running[0].join(left)
