"""The items view: the current state of every item, deleted ones included (flagged).

`next_item_row` is the one fold of an item's read-model state: the incremental apply
below and time travel (read/time_travel.py) both use it. The SQL of the bulk build
(`_BUILD`) and of a catch-up's range (`_FROM_HISTORY`) are the deliberate second
expressions of it, for speed; tests/test_sync_properties.py and tests/test_sync_paths.py
hold them to the same projection.
"""

from __future__ import annotations

from ..domain.item import ItemCreated, ItemDeleted
from ..projection.store import run_script
from .base import View

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from ..domain.item import Event
    from ..journal.records import RecordedEvent
    from .base import Change

    ItemRow = tuple[str, str | None, int, int, str | None, str, int]
    """(item_id, description, version, deleted, created_at, updated_at, position); a
    description or created_at of None means "keep the stored one"."""

NAME = "items"
VERSION = 2

_SCHEMA = """
CREATE TABLE items (
    item_key    INTEGER PRIMARY KEY,   -- stable row key, also the item's rowid in item_search
    item_id     TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL,
    version     INTEGER NOT NULL,      -- the item's stream version
    deleted     INTEGER NOT NULL,      -- 1 once deleted (until created again)
    created_at  TEXT    NOT NULL,      -- UTC, ISO 8601
    updated_at  TEXT    NOT NULL,
    position    INTEGER NOT NULL       -- journal position of its last change
);
"""
# Version 1 also had a partial index of live ids (items_live). Every upsert sets
# `deleted`, so SQLite rewrote its entry for each event applied, about 6% of an
# incremental sync; listing 100,000 live ids through the UNIQUE index instead took 40
# ms rather than 36.

_DROP = "DROP TABLE IF EXISTS items"

# Numbered parameters: NULL description or created_at means "keep the stored one"
# (a delete keeps the last description; an update keeps the creation time).
_UPSERT = """
INSERT INTO items (item_id, description, version, deleted, created_at, updated_at, position)
VALUES (?1, COALESCE(?2, ''), ?3, ?4, COALESCE(?5, ?6), ?6, ?7)
ON CONFLICT (item_id) DO UPDATE SET
    description = COALESCE(?2, description),
    version     = ?3,
    deleted     = ?4,
    created_at  = COALESCE(?5, created_at),
    updated_at  = ?6,
    position    = ?7
"""

# next_item_row in SQL, over item_history (built first): an item's row comes from its
# last event; a deleted item keeps the description its last create or update set, and
# created_at is the time of its last ItemCreated; rows are numbered (item_key) in the
# order items first appear, as the incremental upserts number them.
_BUILD = """
INSERT INTO items (item_id, description, version, deleted, created_at, updated_at, position)
SELECT h.item_id,
       CASE WHEN h.event_type = 'ItemDeleted' THEN
           COALESCE((SELECT d.description FROM item_history AS d
                     WHERE d.item_id = h.item_id AND d.version < h.version
                       AND d.description IS NOT NULL
                     ORDER BY d.version DESC LIMIT 1), '')
       ELSE h.description END,
       h.version,
       h.event_type = 'ItemDeleted',
       CASE WHEN h.event_type = 'ItemCreated' THEN h.recorded_at ELSE
           COALESCE((SELECT c.recorded_at FROM item_history AS c
                     WHERE c.item_id = h.item_id AND c.event_type = 'ItemCreated'
                       AND c.version < h.version
                     ORDER BY c.version DESC LIMIT 1), h.recorded_at)
       END,
       h.recorded_at,
       h.position
FROM (SELECT item_id, MAX(version) AS version FROM item_history GROUP BY item_id) AS last
JOIN item_history AS h ON h.item_id = last.item_id AND h.version = last.version
JOIN item_history AS first ON first.item_id = last.item_id AND first.version = 1
ORDER BY first.position
"""


# `apply` in SQL for a catch-up's range ?1 < position <= ?2, from item_history (applied
# to the range by then): one upsert per event, in journal order, each on the row the
# one before it left, which is next_item_row event by event (a description or
# created_at that next_item_row leaves as "keep the stored one" keeps the row's own).
# Whether an event is a create is read back from item_history: excluded.* only has
# the row's columns. New items are numbered in the order they first appear, as the
# upserts of `apply` number them.
_FROM_HISTORY = """
INSERT INTO items (item_id, description, version, deleted, created_at, updated_at, position)
SELECT item_id, COALESCE(description, ''), version, event_type = 'ItemDeleted',
       recorded_at, recorded_at, position
FROM item_history WHERE position > ?1 AND position <= ?2 ORDER BY position
ON CONFLICT (item_id) DO UPDATE SET
    description = CASE WHEN excluded.deleted THEN description ELSE excluded.description END,
    version     = excluded.version,
    deleted     = excluded.deleted,
    created_at  = CASE WHEN (SELECT h.event_type FROM item_history AS h
                             WHERE h.position = excluded.position) = 'ItemCreated'
                       THEN excluded.created_at ELSE created_at END,
    updated_at  = excluded.updated_at,
    position    = excluded.position
"""


def next_item_row(before: ItemRow | None, recorded: RecordedEvent, event: Event) -> ItemRow:
    """The item's row after `event` (recorded as `recorded`), given its row before it
    (None: not known, which for the projection means "whatever is stored")."""
    at = recorded.recorded_at
    if isinstance(event, ItemCreated):
        # A create starts the item afresh, even a deleted one created again.
        return (
            recorded.stream_id,
            event.description,
            recorded.stream_version,
            0,
            at,
            at,
            recorded.position,
        )
    if isinstance(event, ItemDeleted):
        # A deleted item keeps showing its last description.
        description = before[1] if before is not None else None
        deleted = 1
    else:
        description, deleted = event.description, 0
    created_at = before[4] if before is not None else None
    return (
        recorded.stream_id,
        description,
        recorded.stream_version,
        deleted,
        created_at,
        at,
        recorded.position,
    )


def create(conn: sqlite3.Connection) -> None:
    run_script(conn, _SCHEMA)


def drop(conn: sqlite3.Connection) -> None:
    conn.execute(_DROP)


def apply(conn: sqlite3.Connection, changes: Sequence[Change]) -> None:
    """One upsert per item the batch touches (its last state), not one per event."""
    latest: dict[str, ItemRow] = {}
    for recorded, event in changes:
        item_id = recorded.stream_id
        latest[item_id] = next_item_row(latest.get(item_id), recorded, event)
    if latest:
        conn.executemany(_UPSERT, latest.values())


def build(conn: sqlite3.Connection, journal_head: int | None) -> bool:
    """From item_history (filled by now, in SQL or by replay, upcasting included)."""
    conn.execute(_BUILD)
    return True


def apply_range(conn: sqlite3.Connection, after: int, up_to: int) -> bool:
    """The items the events after `after` up to `up_to` touched, from item_history."""
    conn.execute(_FROM_HISTORY, (after, up_to))
    return True


VIEW = View(
    NAME,
    VERSION,
    create=create,
    drop=drop,
    apply=apply,
    build=build,
    apply_range=apply_range,
    depends_on=("item_history",),
)
