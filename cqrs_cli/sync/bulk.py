"""The journal's own file, attached to the projection's connection for work in SQL.

Views that can build themselves in SQL (views/*.py, `build`), or apply a range of a
large catch-up in SQL (`apply_range`), read the journal's `events` table under the
schema name views.base.JOURNAL, with no event crossing into Python: several times
faster than decoding events and giving them to the views' `apply`. That needs a
journal kept in one local SQLite file (`Journal.local_file()`) and every event read at
its type's current schema version (nothing to upcast); otherwise sync goes through
Python.
"""

from __future__ import annotations

import sqlite3

from ..domain.codec import SCHEMA_VERSIONS
from ..journal.chain import GENESIS
from ..views.base import JOURNAL

_CURRENT = " OR ".join(
    f"(event_type = '{name}' AND schema_version = {version})"
    for name, version in SCHEMA_VERSIONS.items()
)


def attach(conn: sqlite3.Connection, journal_uri: str) -> None:
    """Attach the journal read-only (outside any transaction, as SQLite requires)."""
    conn.execute(f"ATTACH DATABASE ? AS {JOURNAL}", (journal_uri,))


def attached(conn: sqlite3.Connection) -> bool:
    """Whether the journal is attached already (a first sync that found another sync
    had built the projection catches up on the connection its build attached)."""
    return any(row[1] == JOURNAL for row in conn.execute("PRAGMA database_list"))


def detach(conn: sqlite3.Connection) -> None:
    try:
        conn.execute(f"DETACH DATABASE {JOURNAL}")
    except sqlite3.Error:
        pass


def head(conn: sqlite3.Connection) -> int:
    """The attached journal's last position, in the caller's transaction: what a build
    reads up to."""
    (position,) = conn.execute(
        f"SELECT COALESCE(MAX(position), 0) FROM {JOURNAL}.events"
    ).fetchone()
    return int(position)


def current(conn: sqlite3.Connection, up_to: int, *, after: int = 0) -> bool:
    """Whether every event after `after` up to `up_to` is stored at its type's current
    schema version, so that SQL may read its data as decoding would (no upcasting)."""
    stale = conn.execute(
        f"SELECT 1 FROM {JOURNAL}.events WHERE position > ? AND position <= ? "
        f"AND NOT ({_CURRENT}) LIMIT 1",
        (after, up_to),
    ).fetchone()
    return stale is None


def range_end(conn: sqlite3.Connection, after: int, limit: int) -> tuple[int, int, str] | None:
    """The next `limit` events after `after` in the attached journal, as the caller's
    transaction sees it: (how many, the last one's position, its hash); None if there
    are none."""
    count, position = conn.execute(
        f"SELECT COUNT(*), MAX(position) FROM (SELECT position FROM {JOURNAL}.events "
        "WHERE position > ? ORDER BY position LIMIT ?)",
        (after, limit),
    ).fetchone()
    if not count:
        return None
    (digest,) = conn.execute(
        f"SELECT hash FROM {JOURNAL}.events WHERE position = ?", (position,)
    ).fetchone()
    return int(count), int(position), str(digest)


def count_and_hash(conn: sqlite3.Connection, up_to: int) -> tuple[int, str]:
    """How many events there are up to `up_to`, and the hash of the one there."""
    (count,) = conn.execute(
        f"SELECT COUNT(*) FROM {JOURNAL}.events WHERE position <= ?", (up_to,)
    ).fetchone()
    last = conn.execute(
        f"SELECT hash FROM {JOURNAL}.events WHERE position = ?", (up_to,)
    ).fetchone()
    return int(count), str(last[0]) if last else GENESIS
