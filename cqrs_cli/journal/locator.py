"""The one way in to a journal: from its locator to an open `Journal`.

A locator is what `--journal` and CQRS_JOURNAL hold: a file path, for the SQLite
backend, or a `postgresql://...` URI, for the PostgreSQL backend. Anything shaped like
a URL (`scheme://...`) names a server backend and is never taken for a file name: an
unknown scheme is refused, so that a typo does not silently create a folder named
after the URL, with its password in the path. Backends are imported only when a locator of
theirs is used, so that a command pays only for its own.

To add a backend: implement `journal.base.Backend` in a module of its own and add its
scheme to `_backend` below.
"""

from __future__ import annotations

from ..errors import UsageError
from .redaction import redacted, scheme_of

__all__ = [
    "create_journal",
    "find_journal",
    "journal_exists",
    "open_journal",
    "redacted",
    "scheme_of",
]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .base import Backend, Fill, Journal


def _backend(locator: str) -> Backend:
    if not locator:
        raise UsageError("the journal locator is empty: give a file path")
    scheme = scheme_of(locator)
    if scheme is None:
        from .sqlite_journal import BACKEND

        return BACKEND
    if scheme in ("postgresql", "postgres"):
        from .postgres_journal import BACKEND as SERVER

        return SERVER
    raise UsageError(
        f"{redacted(locator)}: unknown journal scheme {scheme!r}; give the path of an "
        "SQLite journal file or a postgresql:// URI"
    )


def journal_exists(locator: str) -> bool:
    """Whether a journal is at `locator` (StorageError if something else is)."""
    return _backend(locator).exists(locator)


def find_journal(locator: str) -> Journal | None:
    """The existing journal at `locator`, read-only; None while nothing was written there.
    For readers: sync, status, time travel, `cqrs events`, the journal tools."""
    return _backend(locator).find(locator)


def open_journal(locator: str) -> Journal:
    """The journal at `locator` for writing; created on the first write."""
    return _backend(locator).open(locator)


def create_journal(locator: str, journal_id: str, fill: Fill) -> int:
    """A new journal at `locator` (none may exist there), named `journal_id` and filled by
    `fill` all or nothing; how many events `fill` stored. For `journal import`."""
    return _backend(locator).create_from(locator, journal_id, fill)
