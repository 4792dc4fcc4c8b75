"""The item_search view: a full-text index (FTS5) of live items' ids and descriptions.

It holds no copy of the text (external content: the SQL view live_items). Its `apply`
runs after items' and item_history's, in the same transaction, and re-indexes the items
the batch touched in one statement: what the index held for each (its state before the
batch, which FTS5's 'delete' needs word for word, read from item_history: the item's
event just before its first one in the batch) comes out, and its row in items now, if
live, goes in. Both in rowid order, each item's 'delete' before its insert: FTS5 then
writes one segment per batch. (Version 1 did this with row triggers on items: about
three quarters of an incremental sync's time, because FTS5 flushes its pending
changes at every statement savepoint, that is at every row a trigger writes.)

A bulk build runs FTS5's 'rebuild' once, after items is filled: several times faster
than row by row.

Version 3 keeps no per-row token counts (`columnsize = 0`): FTS5 wrote and deleted a
row of its docsize table for every item re-indexed, nearly a third of the index's
write cost (an incremental sync of 100,000 updates: 1.2-1.4 s -> 1.0 s here). Ranking
is unchanged (bm25 counts the tokens of the rows it ranks from live_items instead); a
search matching every one of 100,000 items takes about 117 ms instead of 90, a
selective one the same.
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
VERSION = 3

_SCHEMA = """
-- live_items: what item_search indexes.
CREATE VIEW live_items AS SELECT item_key, item_id, description FROM items WHERE deleted = 0;

CREATE VIRTUAL TABLE item_search USING fts5(
    item_id, description,
    content = 'live_items', content_rowid = 'item_key', columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);
"""

_DROP = """
DROP TRIGGER IF EXISTS items_to_search_insert;
DROP TRIGGER IF EXISTS items_to_search_update;
DROP TRIGGER IF EXISTS items_to_search_delete;
DROP TABLE IF EXISTS item_search;
DROP VIEW IF EXISTS live_items;
"""

# ?1, ?2: the first and last journal positions of the batch. item_history holds them by
# now (it comes first in the registry and is applied in the same transaction), and
# items holds every touched item's state after the batch. An item's state before the
# batch is its event at the version before its first one in the batch: it was in the
# index unless that event deleted it (or there is none: created in this batch). The
# 'delete' must give FTS5 exactly the text it indexed, which that event set. Each
# touched item is looked up once in items and once in item_history, and makes up to
# two rows: its 'delete' (step 0) and its insert (step 1). CROSS JOIN keeps the two
# steps the innermost loop. (Two SELECTs in a UNION looked every item up twice in
# items: about 12% more time for this statement.)
_REINDEX = """
WITH touched AS (
    SELECT item_id, MIN(version) AS first FROM item_history
    WHERE position BETWEEN ?1 AND ?2 GROUP BY item_id
)
INSERT INTO item_search (item_search, rowid, item_id, description)
SELECT CASE step WHEN 0 THEN 'delete' END, i.item_key,
       CASE step WHEN 0 THEN before.item_id ELSE i.item_id END,
       CASE step WHEN 0 THEN before.description ELSE i.description END
FROM touched
JOIN items AS i ON i.item_id = touched.item_id
LEFT JOIN item_history AS before
  ON before.item_id = touched.item_id AND before.version = touched.first - 1
CROSS JOIN (SELECT 0 AS step UNION ALL SELECT 1) AS steps
WHERE (step = 0 AND before.event_type != 'ItemDeleted') OR (step = 1 AND i.deleted = 0)
ORDER BY i.item_key, step
"""

_REBUILD = "INSERT INTO item_search (item_search) VALUES ('rebuild')"


def create(conn: sqlite3.Connection) -> None:
    run_script(conn, _SCHEMA)


def drop(conn: sqlite3.Connection) -> None:
    # The triggers are version 1's, when a rebuild replaces a projection made by it.
    run_script(conn, _DROP)


def apply(conn: sqlite3.Connection, changes: Sequence[Change]) -> None:
    """Re-index the items `changes` touched, at once (see the module's docstring)."""
    if changes:
        conn.execute(_REINDEX, (changes[0][0].position, changes[-1][0].position))


def apply_range(conn: sqlite3.Connection, after: int, up_to: int) -> bool:
    """`apply` for the events after `after` up to `up_to`: it reads only item_history
    and items, so it is the same statement whichever way they were applied."""
    conn.execute(_REINDEX, (after + 1, up_to))
    return True


def build(conn: sqlite3.Connection, journal_head: int | None) -> bool:
    """The index of every live item in items (filled by now), at once."""
    conn.execute(_REBUILD)
    return True


VIEW = View(
    NAME,
    VERSION,
    create=create,
    drop=drop,
    apply=apply,
    build=build,
    apply_range=apply_range,
    depends_on=("item_history", "items"),
)
