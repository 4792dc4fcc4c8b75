"""The full-text index (item_search) kept current batch by batch: each batch re-indexes
the items it touched in one statement (views/item_search.py), reading what the index
held for them from item_history. Whatever the batches, the index is the one a new FTS5
table of the live items holds, token for token, and a projection made by version 1
(row triggers on items) is rebuilt, triggers gone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from projection_helpers import (
    assert_projection_is_exact,
    checkpoint_of,
    copy_of_random_journal,
    write_random_events,
)

from cqrs_cli import CommandService, StorePaths
from cqrs_cli.sync.runner import Syncer
from cqrs_cli.views import item_search

# Version 1's triggers, as a projection made by it holds them.
_V1_TRIGGERS = """
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


def fts_integrity(projection: Path) -> None:
    """FTS5's own check of the index against its content (live_items)."""
    conn = sqlite3.connect(projection)
    try:
        conn.execute("INSERT INTO item_search (item_search, rank) VALUES ('integrity-check', 1)")
    finally:
        conn.close()


@pytest.mark.parametrize("batch_size", [1, 7, 250, 2000])
def test_the_index_is_exact_after_catching_up_in_any_batch_size(
    tmp_path: Path, batch_size: int
) -> None:
    # Few items and many events: each batch updates, deletes and creates again items
    # that earlier batches (and earlier events of the same batch) indexed.
    journal = copy_of_random_journal(tmp_path / "journal.db", 1500, items=40, seed=7)
    paths = StorePaths(str(journal), str(tmp_path / "projection.db"))
    with Syncer(paths, batch_size=batch_size) as syncer:
        syncer.run()  # the first sync: a build in bulk
        for round_ in range(3):
            write_random_events(journal, 600, items=40, seed=100 + round_)
            report = syncer.run()
            assert report.applied == 600 and not report.rebuilt
            fts_integrity(tmp_path / "projection.db")
    assert_projection_is_exact(journal, paths.projection, tmp_path)


def test_a_projection_with_version_1_triggers_is_rebuilt_without_them(
    tmp_path: Path,
) -> None:
    paths = StorePaths(str(tmp_path / "journal.db"), str(tmp_path / "projection.db"))
    with CommandService(paths) as commands:
        commands.create_item("Item1", "blue widget")
        commands.create_item("Item2", "red widget")
    with Syncer(paths) as syncer:
        syncer.run()
    conn = sqlite3.connect(paths.projection, isolation_level=None)
    try:
        for statement in _V1_TRIGGERS.split("END;")[:-1]:
            conn.execute(statement + "END;")
        conn.execute("UPDATE projection_views SET version = 1 WHERE view = 'item_search'")
    finally:
        conn.close()
    with CommandService(paths) as commands:
        commands.update_item("Item1", "green widget")
    with Syncer(paths) as syncer:
        report = syncer.run()
    assert report.rebuilt
    assert report.reasons == (f"view item_search changed from version 1 to {item_search.VERSION}",)
    conn = sqlite3.connect(paths.projection)
    try:
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        assert triggers.fetchall() == []
    finally:
        conn.close()
    assert checkpoint_of(paths.projection) == 3
    fts_integrity(Path(paths.projection))
    assert_projection_is_exact(paths.journal, paths.projection, tmp_path)
