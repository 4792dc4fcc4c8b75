"""Typed errors of cqrs, each carrying the exit code the CLI turns it into.

    CqrsError                  1  unexpected
    ├── UsageError             2  bad input: an invalid id, description or option value
    ├── NotFoundError          3  the item is unknown or deleted; no projection yet
    ├── ConflictError          4  the item exists, an expected version did not match,
    │   └── WrongExpectedVersion  or an idempotency key was reused for another command
    ├── StaleReadError         5  the projection did not reach a position in time
    ├── BusyError              6  the file stayed locked longer than the busy timeout: retry
    │   └── UnavailableError      or the journal's server could not be reached: retry
    └── StorageError           7  a wrong, corrupt or incompatible file; disk full; I/O

The exit codes are part of the command-line interface and documented in the README.
This module is imported on every call, so it imports nothing.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    STALE = 5
    BUSY = 6
    STORAGE = 7


class CqrsError(Exception):
    """Base of every error cqrs raises on purpose."""

    exit_code: ExitCode = ExitCode.UNEXPECTED


class UsageError(CqrsError):
    exit_code = ExitCode.USAGE


class NotFoundError(CqrsError):
    exit_code = ExitCode.NOT_FOUND


class ConflictError(CqrsError):
    exit_code = ExitCode.CONFLICT


class WrongExpectedVersion(ConflictError):
    """The stream moved on since the caller read it (optimistic concurrency)."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"item {stream_id!r} is at version {actual}, not the expected version {expected}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class StaleReadError(CqrsError):
    exit_code = ExitCode.STALE


class BusyError(CqrsError):
    exit_code = ExitCode.BUSY


class UnavailableError(BusyError):
    """The journal's server could not be reached, or the connection to it was lost: a
    retry may succeed (what exit 6 tells a script). Whether a write that was cut off
    at its commit was made is unknown: retry it with an idempotency key."""


class StorageError(CqrsError):
    exit_code = ExitCode.STORAGE
