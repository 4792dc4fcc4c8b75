"""The projection's schema: one small set of tables per view, each shaped for its queries.

Documented in the README ("The projection file") so that people can open the file with
sqlite3, sqlite-utils or Datasette. Bump a view's version whenever its tables or the
way events map onto them change: the next sync rebuilds the projection, saying why.
"""

from __future__ import annotations

from ..sqlitefile import PROJECTION_APP_ID, FileSpec

SCHEMA_VERSION = 1
SPEC = FileSpec("cqrs projection", PROJECTION_APP_ID, SCHEMA_VERSION)

VIEW_VERSIONS: dict[str, int] = {"items": 1, "item_history": 1, "item_search": 1}
"""Every view and the version of its shape. All views move forward together."""

BOOKKEEPING = """
CREATE TABLE projection_meta (
    key   TEXT PRIMARY KEY,            -- journal_id, last_sync_at
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE projection_views (
    view       TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    checkpoint INTEGER NOT NULL,       -- the last journal position applied (never a count)
    updated_at TEXT
) WITHOUT ROWID;
"""

VIEWS = """
-- items: the current state of every item, deleted ones included (flagged).
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
CREATE INDEX items_live ON items (item_id) WHERE deleted = 0;

-- item_history: every change of every item, in journal order.
CREATE TABLE item_history (
    position    INTEGER PRIMARY KEY,   -- journal position
    item_id     TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    event_type  TEXT    NOT NULL,      -- ItemCreated, ItemUpdated, ItemDeleted
    description TEXT,                  -- the description it set (NULL for a delete)
    recorded_at TEXT    NOT NULL
);
CREATE INDEX item_history_by_item ON item_history (item_id, version);

-- live_items: what item_search indexes.
CREATE VIEW live_items AS SELECT item_key, item_id, description FROM items WHERE deleted = 0;

-- item_search: full-text index of live items' ids and descriptions. It holds no copy of
-- the text (external content: live_items); its checkpoint moves with items'.
CREATE VIRTUAL TABLE item_search USING fts5(
    item_id, description,
    content = 'live_items', content_rowid = 'item_key',
    tokenize = 'unicode61 remove_diacritics 2'
);
"""

SEARCH_TRIGGERS = """
-- Keep item_search in step with items, one row at a time (incremental sync). A bulk
-- build drops these and runs FTS5's 'rebuild' once at the end, several times faster.
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

BUILD_SEARCH_INDEX = "INSERT INTO item_search (item_search) VALUES ('rebuild')"

DROP_VIEWS = """
DROP TABLE IF EXISTS item_search;
DROP VIEW IF EXISTS live_items;
DROP TABLE IF EXISTS items;
DROP TABLE IF EXISTS item_history;
"""
