"""The item_history view: every change of every item, in journal order."""

from __future__ import annotations

import sqlite3

from ..domain.item import ItemDeleted
from ..projection.store import run_script
from .base import JOURNAL, View

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .base import Change

NAME = "item_history"
VERSION = 1

_SCHEMA = """
CREATE TABLE item_history (
    position    INTEGER PRIMARY KEY,   -- journal position
    item_id     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    event_type  TEXT    NOT NULL,      -- ItemCreated, ItemUpdated, ItemDeleted
    description TEXT,                  -- the description it set (NULL for a delete)
    recorded_at TEXT    NOT NULL
);
CREATE INDEX item_history_by_item ON item_history (item_id, version);
"""

_DROP = "DROP TABLE IF EXISTS item_history"

_INSERT = """
INSERT INTO item_history (position, item_id, version, event_type, description, recorded_at)
VALUES (?, ?, ?, ?, ?, ?)
"""

# `apply` in SQL, straight from the journal's rows (every event is at its current schema
# version: sync checked, so the stored JSON is what decoding would read): the events at
# positions ?1 < p <= ?2, for a build (?1 = 0) or a range of a catch-up. A description
# that is not a JSON string becomes NULL, which _MALFORMED finds: the column's TEXT
# affinity would otherwise store a number as text, where decoding refuses the event.
# (json_type and json_extract of the same value parse it once: SQLite caches it.)
_FROM_JOURNAL = f"""
INSERT INTO item_history (position, item_id, version, event_type, description, recorded_at)
SELECT position, stream_id, stream_version, event_type,
       CASE WHEN event_type = 'ItemDeleted' THEN NULL
            WHEN json_type(data, '$.description') = 'text'
            THEN json_extract(data, '$.description') END,
       recorded_at
FROM {JOURNAL}.events WHERE position > ?1 AND position <= ?2 ORDER BY position
"""

_MALFORMED = """
SELECT 1 FROM item_history WHERE position > ?1 AND position <= ?2
AND event_type != 'ItemDeleted' AND typeof(description) != 'text' LIMIT 1
"""


def create(conn: sqlite3.Connection) -> None:
    run_script(conn, _SCHEMA)


def drop(conn: sqlite3.Connection) -> None:
    conn.execute(_DROP)


def apply(conn: sqlite3.Connection, changes: Sequence[Change]) -> None:
    conn.executemany(
        _INSERT,
        [
            (
                recorded.position,
                recorded.stream_id,
                recorded.stream_version,
                recorded.event_type,
                None if isinstance(event, ItemDeleted) else event.description,
                recorded.recorded_at,
            )
            for recorded, event in changes
        ],
    )


def build(conn: sqlite3.Connection, journal_head: int | None) -> bool:
    """False without the journal to read, or when some event's data is not what its
    type says: replaying it through `apply` then reports which event."""
    if journal_head is None:
        return False
    return apply_range(conn, 0, journal_head)


def apply_range(conn: sqlite3.Connection, after: int, up_to: int) -> bool:
    """The journal's events after `after` up to `up_to`, from its attached file. False
    when some event's data is not what its type says (the caller undoes the rows):
    `apply` then reports which event."""
    try:
        conn.execute(_FROM_JOURNAL, (after, up_to))
    except sqlite3.OperationalError as exc:
        if "JSON" in str(exc):
            return False
        raise
    return conn.execute(_MALFORMED, (after, up_to)).fetchone() is None


VIEW = View(
    NAME, VERSION, create=create, drop=drop, apply=apply, build=build, apply_range=apply_range
)
