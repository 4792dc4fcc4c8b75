"""A view added to the registry is built, rebuilt and kept current like the built-in ones,
each view is caught up from its own checkpoint, and a checkpoint moves only with the
rows of its own view.

The toy view `event_counts` (how many events of each type) has no bulk build: sync
fills it by replaying the journal through its `apply`. Added the old way (schema,
version, projector), such a view stayed empty after the first sync while its checkpoint
said it was done."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from projection_helpers import assert_projection_is_exact, dump_projection, journal_events

from cqrs_cli import CommandService, QueryService, StorePaths
from cqrs_cli.journal.memory_journal import MemoryJournal
from cqrs_cli.sync.apply import apply_batch
from cqrs_cli.sync.runner import Syncer, sync_projection
from cqrs_cli.views import registry
from cqrs_cli.views.base import View

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cqrs_cli.views.base import Change

_SCHEMA = "CREATE TABLE event_counts (event_type TEXT PRIMARY KEY, events INTEGER NOT NULL)"
_ADD = (
    "INSERT INTO event_counts (event_type, events) VALUES (?, ?) "
    "ON CONFLICT (event_type) DO UPDATE SET events = events + excluded.events"
)


class EventCounts:
    """The toy view's functions, noting the positions every `apply` was given."""

    def __init__(self) -> None:
        self.applied: list[list[int]] = []

    def create(self, conn: sqlite3.Connection) -> None:
        conn.execute(_SCHEMA)

    def drop(self, conn: sqlite3.Connection) -> None:
        conn.execute("DROP TABLE IF EXISTS event_counts")

    def apply(self, conn: sqlite3.Connection, changes: Sequence[Change]) -> None:
        self.applied.append([recorded.position for recorded, _ in changes])
        counts = Counter(recorded.event_type for recorded, _ in changes)
        conn.executemany(_ADD, sorted(counts.items()))

    def view(self, version: int = 1) -> View:
        return View("event_counts", version, create=self.create, drop=self.drop, apply=self.apply)


@pytest.fixture
def event_counts() -> Iterator[EventCounts]:
    """The toy view, registered for the test only."""
    before = registry.views()
    toy = EventCounts()
    registry.register(toy.view())
    try:
        yield toy
    finally:
        registry.unregister("event_counts")
        assert registry.views() == before


def write(store: Path | StorePaths, count: int, prefix: str = "Item") -> None:
    """`count` creates, then an update and a delete."""
    with CommandService(store) as commands:
        for n in range(1, count + 1):
            commands.create_item(f"{prefix}{n}", f"description of {prefix}{n}")
        commands.update_item(f"{prefix}1", "Updated Description")
        commands.delete_item(f"{prefix}{count}")


def counted(journal: Path) -> list[tuple[object, ...]]:
    """What event_counts must hold: the journal's events counted by type."""
    return sorted(Counter(event.event_type for event in journal_events(journal)).items())


def views_of(projection: Path) -> dict[str, tuple[int, str | None]]:
    """Each view's (checkpoint, updated_at)."""
    conn = sqlite3.connect(projection)
    try:
        rows = conn.execute("SELECT view, checkpoint, updated_at FROM projection_views")
        return {view: (checkpoint, updated_at) for view, checkpoint, updated_at in rows}
    finally:
        conn.close()


def test_the_registry_lists_the_views_in_build_order() -> None:
    names = [view.name for view in registry.views()]
    assert names == ["item_history", "items", "item_search"]
    for view in registry.views():
        # Every view comes after the views it reads.
        assert all(names.index(other) < names.index(view.name) for other in view.depends_on)


def test_a_registered_view_without_a_bulk_build_is_filled_by_every_kind_of_sync(
    store: Path, tmp_path: Path, event_counts: EventCounts
) -> None:
    journal, projection = store / "journal.db", store / "projection.db"
    write(store, 3)
    first = QueryService(store).sync()  # the first sync: a build, in bulk where it can
    assert (first.applied, first.end) == (5, 5)
    assert dump_projection(projection)["event_counts"] == counted(journal)
    assert views_of(projection)["event_counts"][0] == 5
    assert_projection_is_exact(journal, projection, tmp_path)

    rebuilt = QueryService(store).sync(rebuild=True)
    assert (rebuilt.applied, rebuilt.rebuilt) == (5, True)
    assert dump_projection(projection)["event_counts"] == counted(journal)

    write(store, 2, prefix="More")
    with Syncer(StorePaths.coerce(store), batch_size=3) as syncer:
        caught_up = syncer.run()
    assert (caught_up.applied, caught_up.start, caught_up.end) == (4, 5, 9)
    assert event_counts.applied[-2:] == [[6, 7, 8], [9]]
    assert dump_projection(projection)["event_counts"] == counted(journal)
    assert_projection_is_exact(journal, projection, tmp_path)


def test_a_journal_without_a_file_is_replayed_through_every_view(
    tmp_path: Path, event_counts: EventCounts
) -> None:
    journal = MemoryJournal()
    with CommandService(journal=journal) as commands:
        commands.create_item("Item1", "one")
        commands.update_item("Item1", "two")
        commands.create_item("Item2")
    paths = StorePaths(str(tmp_path / "unused-journal.db"), str(tmp_path / "projection.db"))
    assert sync_projection(paths, journal=journal, batch_size=2).applied == 3
    dump = dump_projection(paths.projection)
    assert dump["event_counts"] == [("ItemCreated", 2), ("ItemUpdated", 1)]
    items = dump["items"]
    assert isinstance(items, list)
    assert [row[1:4] for row in items] == [("Item1", "two", 2), ("Item2", "", 1)]
    assert dump["item_search"] == [(1, "Item1", "two"), (2, "Item2", "")]


def test_a_view_added_to_a_synced_projection_is_built_by_a_rebuild_saying_why(
    store: Path, tmp_path: Path
) -> None:
    write(store, 3)
    QueryService(store).sync()
    toy = EventCounts()
    registry.register(toy.view())
    told: list[str] = []
    try:
        with Syncer(StorePaths.coerce(store), notify=told.append) as syncer:
            report = syncer.run()
        assert (report.rebuilt, report.reasons) == (True, ("view event_counts is new",))
        assert told == ["view event_counts is new"]
        assert dump_projection(store / "projection.db")["event_counts"] == counted(
            store / "journal.db"
        )
        assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)

        registry.unregister("event_counts")
        registry.register(toy.view(version=2))
        with Syncer(StorePaths.coerce(store)) as syncer:
            report = syncer.run()
        assert report.reasons == ("view event_counts changed from version 1 to 2",)
    finally:
        registry.unregister("event_counts")
    # Once the view is no longer built, its bookkeeping goes with the next rebuild:
    # a checkpoint nobody moves would hold every read's freshness back.
    with Syncer(StorePaths.coerce(store)) as syncer:
        report = syncer.run()
    assert report.reasons == ("view event_counts is no longer built",)
    assert "event_counts" not in views_of(store / "projection.db")
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_each_view_is_caught_up_from_its_own_checkpoint_and_only_its_checkpoint_moves(
    store: Path, tmp_path: Path, event_counts: EventCounts
) -> None:
    journal, projection = store / "journal.db", store / "projection.db"
    write(store, 3)
    QueryService(store).sync()
    write(store, 2, prefix="More")  # positions 6 to 9
    QueryService(store).sync()
    # event_counts as if it had been applied up to position 7 only: its rows, its
    # checkpoint, and the hash of the event at the projection's (lowest) checkpoint.
    events = journal_events(journal)
    conn = sqlite3.connect(projection)
    for recorded in events[7:]:
        conn.execute(
            "UPDATE event_counts SET events = events - 1 WHERE event_type = ?",
            (recorded.event_type,),
        )
    conn.execute("UPDATE projection_views SET checkpoint = 7 WHERE view = 'event_counts'")
    conn.execute(
        "UPDATE projection_meta SET value = ? WHERE key = 'checkpoint_hash'", (events[6].hash,)
    )
    conn.commit()
    conn.close()
    before = views_of(projection)
    event_counts.applied.clear()

    report = QueryService(store).sync()
    assert (report.applied, report.start, report.end) == (2, 7, 9)
    # Only event_counts was given events, those above its own checkpoint ...
    assert event_counts.applied == [[8, 9]]
    after = views_of(projection)
    assert after["event_counts"][0] == 9
    # ... and the others' checkpoints (and their times) did not move.
    assert {name: state for name, state in after.items() if name != "event_counts"} == {
        name: state for name, state in before.items() if name != "event_counts"
    }
    assert dump_projection(projection)["event_counts"] == counted(journal)
    assert_projection_is_exact(journal, projection, tmp_path)


def test_apply_batch_gives_each_view_what_is_above_its_checkpoint() -> None:
    journal = MemoryJournal()
    with CommandService(journal=journal) as commands:
        for n in range(1, 6):
            commands.create_item(f"Item{n}")
    events = journal.read_all(after=2, limit=10)  # positions 3, 4, 5
    behind, between, ahead = EventCounts(), EventCounts(), EventCounts()
    views = [
        View(name, 1, create=toy.create, drop=toy.drop, apply=toy.apply)
        for name, toy in (("behind", behind), ("between", between), ("ahead", ahead))
    ]
    conn = sqlite3.connect(":memory:")
    behind.create(conn)
    applied = apply_batch(conn, views, events, {"behind": 2, "between": 3, "ahead": 5})
    assert applied == ["behind", "between"]
    assert (behind.applied, between.applied, ahead.applied) == ([[3, 4, 5]], [[4, 5]], [])
