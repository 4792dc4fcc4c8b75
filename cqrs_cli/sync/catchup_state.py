"""What the catch-ups after writes leave behind for people: the state file that `cqrs
status` reads (is one running, when did the last one end and how), and one line in the
log file for each catch-up that failed, which a read that is behind mentions.

`<projection>-catchup.json` is rewritten whole (a temporary file, then os.replace: it
is not a SQLite file, so replacing it is safe) by the catch-up that holds the lock, so
writes to it never race. `catchup.log` sits in the projection's folder, the home
folder by default; each line names its projection.
"""

from __future__ import annotations

import json
import os

from ..clock import utc_now
from ..record import Record, set_field
from .catchup_lock import enabled, is_held

STATE_SUFFIX = "-catchup.json"
LOG_NAME = "catchup.log"


def state_path(projection: str) -> str:
    return projection + STATE_SUFFIX


def log_path(projection: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(projection)), LOG_NAME)


class CatchUpStatus(Record):
    """The catch-up after writes of one projection, for `cqrs status`."""

    __slots__ = (
        "enabled",
        "running",
        "pid",
        "started_at",
        "last_ended_at",
        "last_outcome",
        "last_error",
        "log",
    )
    enabled: bool
    running: bool
    pid: int | None
    started_at: str | None
    last_ended_at: str | None
    last_outcome: str | None
    """"ok" or "failed"; None if none has ended yet."""
    last_error: str | None
    log: str

    def __init__(
        self,
        enabled: bool,
        running: bool,
        pid: int | None,
        started_at: str | None,
        last_ended_at: str | None,
        last_outcome: str | None,
        last_error: str | None,
        log: str,
    ) -> None:
        set_field(self, "enabled", enabled)
        set_field(self, "running", running)
        set_field(self, "pid", pid)
        set_field(self, "started_at", started_at)
        set_field(self, "last_ended_at", last_ended_at)
        set_field(self, "last_outcome", last_outcome)
        set_field(self, "last_error", last_error)
        set_field(self, "log", log)

    def describe(self) -> str:
        """One line: `running (pid 12, since T); last ended T (ok)`, `off (CQRS_CATCHUP=0)`."""
        parts = [] if self.enabled else ["off (CQRS_CATCHUP=0)"]
        if self.running:
            since = f"pid {self.pid}, since {self.started_at}" if self.pid else "starting"
            parts.append(f"running ({since})")
        if self.last_outcome == "failed":
            parts.append(f"last failed at {self.last_ended_at}: {self.last_error} (see {self.log})")
        elif self.last_ended_at is not None:
            parts.append(f"last ended {self.last_ended_at} (ok)")
        elif not self.running and self.enabled:
            parts.append("none has run yet")
        return "; ".join(parts)


def _read(projection: str) -> dict[str, object]:
    try:
        with open(state_path(projection), encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return {}  # none yet, or not ours to understand: nothing is known
    return data if isinstance(data, dict) else {}


def _write(projection: str, data: dict[str, object]) -> None:
    path = state_path(projection)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file)
        os.replace(temporary, path)
    except OSError:
        # The state is for people; a catch-up that cannot record it still syncs.
        try:
            os.unlink(temporary)
        except OSError:
            pass


def record_start(projection: str) -> None:
    data = _read(projection)
    data["running"] = {"pid": os.getpid(), "started_at": utc_now()}
    _write(projection, data)


def record_end(projection: str, error: str | None = None) -> None:
    """The catch-up ends (error: it failed, saying this). Called while holding the lock."""
    data = _read(projection)
    data["running"] = None
    data["last"] = {
        "ended_at": utc_now(),
        "outcome": "ok" if error is None else "failed",
        "error": error,
        "pid": os.getpid(),
    }
    _write(projection, data)


def log_failure(projection: str, error: str) -> None:
    """One line in the log file: when, which projection, which process, what went wrong."""
    line = f"{utc_now()} catch-up of {projection} failed (pid {os.getpid()}): {error}"
    line = " ".join(line.split()) + "\n"  # one line, whatever the message holds
    try:
        fd = os.open(
            log_path(projection), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            os.write(fd, line.encode("utf-8", "backslashreplace"))
        finally:
            os.close(fd)
    except OSError:
        pass  # nowhere to say it: the state file (if it could be written) still does


def status(projection: str) -> CatchUpStatus:
    data = _read(projection)
    running = is_held(projection)
    pid = started = None
    record = data.get("running")
    if running and isinstance(record, dict):
        pid = record.get("pid")
        started = record.get("started_at")
    last = data.get("last")
    last = last if isinstance(last, dict) else {}
    return CatchUpStatus(
        enabled(),
        running,
        pid if isinstance(pid, int) else None,
        started if isinstance(started, str) else None,
        _text(last.get("ended_at")),
        _text(last.get("outcome")),
        _text(last.get("error")),
        log_path(projection),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def behind_note(projection: str) -> str:
    """What a read that is behind adds to its note: that the last catch-up failed (and
    where it said why), or that one is running; else nothing."""
    state = status(projection)
    if state.last_outcome == "failed" and not state.running:
        return (
            f"; the last catch-up after a write failed at {state.last_ended_at} "
            f"({state.last_error}; see {state.log})"
        )
    if state.running:
        return "; a catch-up is running"
    return ""
