"""The item_search view: a full-text index (FTS5) of live items' ids and descriptions.

It holds no copy of the text (external content: the SQL view live_items) and is kept
in step with items by triggers, in the same transaction as items' rows: its own
`apply` has nothing left to do. A bulk build creates it (triggers included) only once
items is filled, then runs FTS5's 'rebuild' once: several times faster than row by row.
"""

from __future__ import annotations

from ..projection.store import run_script
from .base import View

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from .base import Change

NAME = "item_search"
VERSION = 1

_SCHEMA = """
-- live_items: what item_search indexes.
CREATE VIEW live_items AS SELECT item_key, item_id, description FROM items WHERE deleted = 0;

CREATE VIRTUAL TABLE item_search USING fts5(
    item_id, description,
    content = 'live_items', content_rowid = 'item_key',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Keep item_search in step with items, one row at a time.
CREATE TRIGGER items_to_search_insert AFTER INSERT ON items WHEN new.deleted = 0
BEGIN
    INSERT INTO item_search (rowid, item_id, description)
    VALUES (new.item_key, new.item_id, new.description);
END;
CREATE TRIGGER items_to_search_update AFTER UPDATE ON items
BEGIN
    INSERT INTO item_search (item_search, rowid, item_id, description)
    SELECT 'delete', old.item_key, old.item_id, old.description WHERE old.deleted = 0;
    INSERT INTO item_search (rowid, item_id, description)
    SELECT new.item_key, new.item_id, new.description WHERE new.deleted = 0;
END;
CREATE TRIGGER items_to_search_delete AFTER DELETE ON items WHEN old.deleted = 0
BEGIN
    INSERT INTO item_search (item_search, rowid, item_id, description)
    VALUES ('delete', old.item_key, old.item_id, old.description);
END;
"""

_DROP = """
DROP TRIGGER IF EXISTS items_to_search_insert;
DROP TRIGGER IF EXISTS items_to_search_update;
DROP TRIGGER IF EXISTS items_to_search_delete;
DROP TABLE IF EXISTS item_search;
DROP VIEW IF EXISTS live_items;
"""

_REBUILD = "INSERT INTO item_search (item_search) VALUES ('rebuild')"


def create(conn: sqlite3.Connection) -> None:
    run_script(conn, _SCHEMA)


def drop(conn: sqlite3.Connection) -> None:
    run_script(conn, _DROP)


def apply(conn: sqlite3.Connection, changes: Sequence[Change]) -> None:
    """Nothing: items' triggers did it, row by row, as items' rows were written."""


def build(conn: sqlite3.Connection, journal_head: int | None) -> bool:
    """The index of every live item in items (filled by now), at once. It never
    declines: created after items was filled, this view could not be replayed (its
    `apply` leaves the work to triggers that were not there yet)."""
    conn.execute(_REBUILD)
    return True


VIEW = View(
    NAME, VERSION, create=create, drop=drop, apply=apply, build=build, depends_on=("items",)
)
