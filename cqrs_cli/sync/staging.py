"""A journal without a file of its own, copied into one for a build in SQL.

The first sync and `--rebuild` are several times faster in SQL, reading the journal's
`events` table attached to the projection's connection (bulk.py, views' `build`), than
replaying every event through the views in Python. A journal kept on a server
(PostgreSQL) has no file to attach, so its events are first copied, page by page in
position order, into a temporary SQLite file beside the projection, which is attached
instead and removed afterwards. The copy is a snapshot up to the head read when it
starts: events committed meanwhile are left to the next catch-up, as with a file.

The copy costs one insert per event into a file nobody else reads (no journal, no
synchronous writes); measured against replaying through the views, it pays for itself
many times over (`make bench`, the PostgreSQL sync row).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile

from ..journal.records import COLUMNS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..journal.base import Journal

PAGE = 5000
"""Events read from the journal per request."""

_CREATE = (
    "CREATE TABLE events (position INTEGER PRIMARY KEY, event_id TEXT, stream_id TEXT, "
    "stream_version INTEGER, event_type TEXT, schema_version INTEGER, data TEXT, "
    "recorded_at TEXT, command_id TEXT, idempotency_key TEXT, correlation_id TEXT, "
    "prev_hash TEXT, hash TEXT)"
)
_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class StagedJournal:
    """The journal's events up to `head`, in a temporary SQLite file: what `bulk.attach`
    takes (`sqlite_uri`); `remove` deletes the file."""

    def __init__(self, path: str, head: int) -> None:
        self.path = path
        self.head = head

    def sqlite_uri(self) -> str:
        return f"file:{self.path}?mode=ro"

    def remove(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except OSError:
                pass


def stage(
    journal: Journal, folder: str, progress: Callable[[int], None] | None = None
) -> StagedJournal:
    """Copy every event of `journal` up to its current head into a new temporary file
    in `folder`; `progress(events copied)` after each page."""
    head = journal.head()
    handle, path = tempfile.mkstemp(prefix=".cqrs-staged-", suffix=".db", dir=folder)
    os.close(handle)
    staged = StagedJournal(path, head)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            # A scratch file: nothing to keep if the machine stops, so no journal and
            # no syncing to disk.
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute(_CREATE)
            conn.execute("BEGIN")
            after = copied = 0
            while after < head:
                events = journal.read_all(after=after, limit=PAGE)
                events = [e for e in events if e.position <= head]
                if not events:
                    break
                conn.executemany(_INSERT, events)
                after = events[-1].position
                copied += len(events)
                if progress is not None:
                    progress(copied)
            conn.execute("COMMIT")
        finally:
            conn.close()
    except BaseException:
        staged.remove()
        raise
    return staged
