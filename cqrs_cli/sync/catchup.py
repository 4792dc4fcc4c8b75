"""The catch-up after writes: sync the projection, holding the catch-up lock, until no
write is left behind; then end.

It is an ordinary sync (runner.Syncer), so everything a sync promises holds for it:
the checkpoint is read inside the projection's write transaction, concurrent syncs
(`cqrs sync`, a follower, `--rebuild`, other catch-ups) wait for each other on the
projection's lock and never apply an event twice, and a kill at any instant leaves
the last committed batch. The lock only keeps catch-ups from piling up; see
catchup_lock.py for the protocol that leaves no write unsynced.

Run by the detached process the CLI leaves behind a write (detached.py), and by the
thread a CommandService starts in a Python program (session.py).
"""

from __future__ import annotations

from . import catchup_state
from .catchup_lock import finish, release

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..paths import StorePaths


def catch_up_holding(paths: StorePaths, lock: int) -> tuple[str | None, int | None]:
    """Sync `paths`' projection while holding the catch-up lock on `lock` (taken by the
    writer that started this catch-up), again while writes are pending, then release
    it. Returns (error, gate): error None on success, else what went wrong (also in the
    state file and one line of the log file); gate, the gate's descriptor still held,
    or None (catchup_lock.finish): the caller exits holding it, or releases it."""
    while True:
        catchup_state.record_start(paths.projection)
        try:
            _sync_once(paths)
        except BaseException as exc:
            release(lock)
            if not isinstance(exc, Exception):
                raise  # an interrupt: the process ends; the kernel frees what it held
            error = _describe(exc)
            catchup_state.record_end(paths.projection, error)
            catchup_state.log_failure(paths.projection, error)
            return error, None
        catchup_state.record_end(paths.projection)
        go_on, gate = finish(paths.projection, lock)
        if not go_on:
            return None, gate


def _sync_once(paths: StorePaths) -> None:
    from .runner import Syncer

    with Syncer(paths) as syncer:
        syncer.run()


def _describe(exc: BaseException) -> str:
    from ..errors import CqrsError

    if isinstance(exc, CqrsError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
