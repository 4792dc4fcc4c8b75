"""The read side from Python: QueryService, cqrs_cli.sync_projection, and the typed errors
it raises."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import cqrs_cli
from cqrs_cli import CommandService, QueryService, StorePaths
from cqrs_cli.domain.item import ItemNotFound
from cqrs_cli.errors import NotFoundError, StaleReadError, StorageError, UsageError


def test_the_seed_example_works_as_written(store: Path) -> None:
    commands = CommandService(store)
    commands.create_item("Item1")
    commands.update_item("Item1", "Updated Description")
    commands.close()

    queries = QueryService(store)
    queries.sync()
    assert str(queries.get_item("Item1")) == "Item1: Updated Description"
    assert queries.list_all_items() == ["Item1"]
    queries.close()


def test_the_default_store_is_cqrs_home(store: Path) -> None:
    with CommandService() as commands:
        commands.create_item("Item1", "in CQRS_HOME")
    with QueryService() as queries:
        queries.sync()
        assert queries.get_item("Item1").description == "in CQRS_HOME"
    assert (store / "journal.db").exists()
    assert (store / "projection.db").exists()


def test_sync_takes_store_paths_and_reports_what_it_did(tmp_path: Path) -> None:
    paths = StorePaths(str(tmp_path / "a" / "events.db"), str(tmp_path / "b" / "views.db"))
    with CommandService(paths) as commands:
        commands.create_item("Item1", "one")
        commands.update_item("Item1", "two")
        commands.create_item("Item2", "three")

    with QueryService(paths) as queries:
        report = queries.sync()
        assert (report.applied, report.start, report.end, report.rebuilt) == (3, 0, 3, False)
        assert str(report) == "Synced 3 events (position 0 -> 3)"
        assert str(queries.sync()) == "Synced 0 events (position 3 -> 3)"
        assert queries.sync(rebuild=True).to_json() == {
            "applied": 3,
            "start": 0,
            "end": 3,
            "rebuilt": True,
            "reasons": [],
        }
        assert queries.list_all_items() == ["Item1", "Item2"]


def test_sync_projection_is_public_and_takes_store_paths(tmp_path: Path) -> None:
    paths = StorePaths(str(tmp_path / "journal.db"), str(tmp_path / "projection.db"))
    with CommandService(paths) as commands:
        commands.create_item("Item1")
    report = cqrs_cli.sync_projection(paths)
    assert isinstance(report, cqrs_cli.SyncReport)
    assert str(report) == "Synced 1 event (position 0 -> 1)"
    assert str(cqrs_cli.sync_projection(paths, rebuild=True, batch_size=1)) == (
        "Rebuilt from 1 event (position 0 -> 1)"
    )
    from cqrs_cli import sync_projection

    assert sync_projection is cqrs_cli.sync_projection


def test_an_unknown_item_is_item_not_found_a_not_found_error_with_exit_code_3(
    store: Path,
) -> None:
    with CommandService(store) as commands:
        commands.create_item("Item1")
    with QueryService(store) as queries:
        queries.sync()
        with pytest.raises(ItemNotFound) as caught:
            queries.get_item("Nope")
    assert isinstance(caught.value, NotFoundError)
    assert isinstance(caught.value, cqrs_cli.CqrsError)
    assert caught.value.exit_code == 3
    assert caught.value.item_id == "Nope"
    assert not caught.value.deleted


def test_a_deleted_item_is_not_found_unless_asked_for(store: Path) -> None:
    with CommandService(store) as commands:
        commands.create_item("Item1", "gone soon")
        commands.delete_item("Item1")
    with QueryService(store) as queries:
        queries.sync()
        with pytest.raises(ItemNotFound) as caught:
            queries.get_item("Item1")
        assert caught.value.deleted
        item = queries.get_item("Item1", include_deleted=True)
        assert (item.deleted, item.version, item.description) == (True, 2, "gone soon")
        assert queries.list_all_items() == []
        assert [i.item_id for i in queries.list_items(include_deleted=True)] == ["Item1"]


def test_waiting_for_a_position_not_reached_is_a_stale_read_with_exit_code_5(
    store: Path,
) -> None:
    with CommandService(store) as commands:
        position = commands.create_item("Item1").position
    assert position is not None
    with QueryService(store) as queries:
        queries.sync()
        queries.wait_for(position, timeout=0)
        with pytest.raises(StaleReadError) as caught:
            queries.wait_for(position + 1, timeout=0.2)
    assert caught.value.exit_code == 5
    assert isinstance(caught.value, cqrs_cli.StaleReadError)


def test_waiting_returns_once_another_sync_reaches_the_position(store: Path) -> None:
    with CommandService(store) as commands:
        commands.create_item("Item1")
        position = commands.update_item("Item1", "later").position
    assert position is not None
    with QueryService(store) as queries:
        syncer = threading.Timer(0.2, QueryService(store).sync)
        syncer.start()
        try:
            queries.wait_for(position, timeout=30)
        finally:
            syncer.join()
        assert queries.get_item("Item1").description == "later"


def test_a_journal_without_a_projection_is_a_stale_read(store: Path) -> None:
    with CommandService(store) as commands:
        commands.create_item("Item1")
    with QueryService(store) as queries, pytest.raises(StaleReadError, match="cqrs sync"):
        queries.get_item("Item1")
    assert not (store / "projection.db").exists()


def test_an_empty_store_has_no_items_and_no_files(store: Path) -> None:
    with QueryService(store) as queries:
        assert queries.list_all_items() == []
        assert queries.search("anything") == []
        with pytest.raises(ItemNotFound):
            queries.get_item("Item1")
        assert queries.checkpoint() == queries.journal_head() == 0
        assert not queries.status().projection_exists
    assert not store.exists()


def test_list_items_pages_by_keyset(store: Path) -> None:
    ids = [f"id-{n:02d}" for n in range(10)]
    with CommandService(store) as commands:
        for item_id in reversed(ids):
            commands.create_item(item_id, item_id.upper())
    with QueryService(store) as queries:
        queries.sync()
        seen: list[str] = []
        while page := [
            item.item_id for item in queries.list_items(limit=3, after=seen[-1] if seen else None)
        ]:
            seen += page
        assert seen == ids
        assert list(queries.item_ids(prefix="id-0")) == ids
        with pytest.raises(UsageError):
            list(queries.item_ids(limit=-1))


def test_history_search_and_status(store: Path) -> None:
    with CommandService(store) as commands:
        commands.create_item("Item1", "blue widget")
        commands.update_item("Item1", "red widget")
        commands.create_item("Item2", "blue gadget")
    with QueryService(store) as queries:
        queries.sync()
        assert [(h.version, h.event_type, h.description) for h in queries.history("Item1")] == [
            (1, "ItemCreated", "blue widget"),
            (2, "ItemUpdated", "red widget"),
        ]
        with pytest.raises(ItemNotFound):
            queries.history("Item3")
        assert [i.item_id for i in queries.search("widget")] == ["Item1"]
        assert [i.item_id for i in queries.search("blue")] == ["Item2"]
        assert sorted(i.item_id for i in queries.search("blue OR red", fts=True)) == [
            "Item1",
            "Item2",
        ]
        status = queries.status()
        assert status.journal_head == 3
        assert status.belongs
        assert [(v.view, v.checkpoint, v.lag) for v in status.views] == [
            ("item_history", 3, 0),
            ("item_search", 3, 0),
            ("items", 3, 0),
        ]


def test_a_projection_of_another_journal_is_a_storage_error(tmp_path: Path) -> None:
    first = StorePaths(str(tmp_path / "a.db"), str(tmp_path / "projection.db"))
    second = StorePaths(str(tmp_path / "b.db"), first.projection)
    with CommandService(first) as commands:
        commands.create_item("Item1")
    with CommandService(second) as commands:
        commands.create_item("Item2")
    QueryService(first).sync()
    with QueryService(second) as queries, pytest.raises(StorageError) as caught:
        queries.list_all_items()
    assert caught.value.exit_code == 7
