"""Helpers specific to the read-side and sync tests: dumping a projection and comparing
dumps, the state a journal folds to, and building random journals quickly. What every
family of tests uses is in common.py."""

from __future__ import annotations

import atexit
import functools
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

from common import read_only

from cqrs_cli.clock import utc_now
from cqrs_cli.domain.codec import decode, encode
from cqrs_cli.domain.item import Event, ItemCreated, ItemDeleted, ItemState, ItemUpdated, fold
from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.batching import append_once
from cqrs_cli.journal.records import AppendMetadata, NewEvent, RecordedEvent
from cqrs_cli.journal.sqlite_journal import SqliteJournal
from cqrs_cli.paths import StorePaths
from cqrs_cli.sync.runner import sync_projection
from cqrs_cli.views.registry import views

Rows = list[tuple[object, ...]]
Dump = dict[str, object]

# Everything a projection shows, minus what depends on the wall clock of the sync
# (projection_views.updated_at, projection_meta.last_sync_at): each registered view's
# rows (its table is named after it), then the bookkeeping.
_VIEW_QUERY = "SELECT * FROM {} ORDER BY rowid"
_VIEW_QUERIES = {
    # An FTS5 table's `*` leaves out the rowid, which is the item's key.
    "item_search": "SELECT rowid, item_id, description FROM item_search ORDER BY rowid",
}
_BOOKKEEPING_QUERIES = {
    "views": "SELECT view, version, checkpoint FROM projection_views ORDER BY view",
    "journal_id": "SELECT value FROM projection_meta WHERE key = 'journal_id'",
}


_SEARCH_TOKENIZER = "unicode61 remove_diacritics 2"
_INDEX_QUERY = "SELECT term, doc, col, offset FROM {} ORDER BY doc, col, offset, term"


def dump_projection(path: str | Path) -> Dump:
    """The projection's content, read in one snapshot, comparable across syncs: every
    registered view's rows and the bookkeeping. Besides the tables, `search_index` is
    what the full-text index itself holds (every token, row and offset), which
    selecting from item_search does not show."""
    conn = read_only(path)
    try:
        names = [view.name for view in views()]
        if "item_search" in names:
            conn.execute(
                "CREATE VIRTUAL TABLE temp.search_index "
                "USING fts5vocab(main, item_search, instance)"
            )
        conn.execute("BEGIN")
        dump: Dump = {
            name: conn.execute(_VIEW_QUERIES.get(name, _VIEW_QUERY.format(name))).fetchall()
            for name in names
        }
        for name, sql in _BOOKKEEPING_QUERIES.items():
            dump[name] = conn.execute(sql).fetchall()
        if "item_search" in names:
            dump["search_index"] = conn.execute(_INDEX_QUERY.format("temp.search_index")).fetchall()
        conn.execute("COMMIT")
    finally:
        conn.close()
    return dump


def fresh_search_index(rows: Sequence[tuple[object, ...]]) -> Rows:
    """The full-text index a new FTS5 table holds for (rowid, item_id, description) rows."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE fresh USING fts5(item_id, description, "
            f"tokenize = '{_SEARCH_TOKENIZER}')"
        )
        conn.execute("CREATE VIRTUAL TABLE fresh_index USING fts5vocab(fresh, instance)")
        conn.executemany("INSERT INTO fresh (rowid, item_id, description) VALUES (?, ?, ?)", rows)
        return conn.execute(_INDEX_QUERY.format("fresh_index")).fetchall()
    finally:
        conn.close()


def checkpoint_of(path: str | Path) -> int:
    """The position every view of the projection has reached (the lowest checkpoint)."""
    conn = read_only(path)
    try:
        (value,) = conn.execute("SELECT MIN(checkpoint) FROM projection_views").fetchone()
    finally:
        conn.close()
    assert isinstance(value, int)
    return value


def journal_events(journal: str | Path) -> list[RecordedEvent]:
    """Every event of the journal, in position order, read through SqliteJournal."""
    opened = SqliteJournal.open(str(journal), create=False, readonly=True)
    try:
        events: list[RecordedEvent] = []
        while batch := opened.read_all(after=events[-1].position if events else 0, limit=5000):
            events += batch
        return events
    finally:
        opened.close()


def decoded(event: RecordedEvent) -> Event:
    """The domain event a recorded one holds."""
    return decode(event.stream_id, event.event_type, event.schema_version, event.data)


def fold_journal(journal: str | Path) -> dict[str, ItemState]:
    """Every item's state, by folding its events with the domain's own `fold`."""
    streams: dict[str, list[Event]] = {}
    for event in journal_events(journal):
        streams.setdefault(event.stream_id, []).append(decoded(event))
    return {item_id: fold(events) for item_id, events in streams.items()}


def clean_rebuild(journal: str | Path, folder: str | Path) -> Dump:
    """The dump of a projection rebuilt from nothing in a file of its own."""
    target = Path(folder) / f"clean-{new_uuid()}.db"
    sync_projection(StorePaths(str(journal), str(target)), rebuild=True)
    return dump_projection(target)


def assert_same_dump(actual: Dump, expected: Dump) -> None:
    """Equal dumps; otherwise an error naming each table that differs and its first
    differing rows (pytest does not rewrite the asserts of this module)."""
    problems = []
    for name in sorted(set(actual) | set(expected)):
        mine, theirs = actual.get(name), expected.get(name)
        if mine == theirs:
            continue
        if isinstance(mine, list) and isinstance(theirs, list):
            extra = [row for row in mine if row not in theirs][:5]
            missing = [row for row in theirs if row not in mine][:5]
            problems.append(
                f"{name}: {len(mine)} rows, expected {len(theirs)}; "
                f"unexpected {extra}; missing {missing}"
            )
        else:
            problems.append(f"{name}: {mine!r}, expected {theirs!r}")
    assert not problems, "projections differ:\n" + "\n".join(problems)


def assert_projection_is_exact(journal: str | Path, projection: str | Path, folder: Path) -> None:
    """The projection is what a clean rebuild gives, every journal event was applied
    exactly once, and it agrees with the domain's fold of the journal."""
    dump = dump_projection(projection)
    assert_same_dump(dump, clean_rebuild(journal, folder))
    events = journal_events(journal)
    history = dump["item_history"]
    assert isinstance(history, list)
    applied = [row[0] for row in history]
    positions = [event.position for event in events]
    assert applied == positions, f"history has positions {applied}, the journal {positions}"
    head = events[-1].position if events else 0
    expected = sorted((view.name, view.version, head) for view in views())
    assert dump["views"] == expected, f"views {dump['views']}, expected {expected}"
    assert_agrees_with_fold(dump, fold_journal(journal))


def assert_agrees_with_fold(dump: Dump, states: dict[str, ItemState]) -> None:
    """items and item_search show what the domain's fold says: every item ever written,
    its version and deleted flag, and the description of the live ones, which alone are
    in the full-text index (exactly as a new index of them would be)."""
    items = dump["items"]
    assert isinstance(items, list)
    shown = {row[1]: (row[3], bool(row[4]), None if row[4] else row[2]) for row in items}
    expected = {
        item_id: (state.version, not state.live, state.description if state.live else None)
        for item_id, state in states.items()
    }
    assert shown == expected, f"items {shown}, but the journal folds to {expected}"
    live = sorted((row[0], row[1], row[2]) for row in items if not row[4])
    assert dump["item_search"] == live, f"item_search {dump['item_search']}, live items {live}"
    index = fresh_search_index(live)
    assert dump["search_index"] == index, (
        f"full-text index {dump['search_index']}, a new index of the live items {index}"
    )


def write_random_events(journal: str | Path, count: int, *, items: int, seed: int) -> None:
    """Append `count` valid events (creates, updates, deletes, re-creates) over `items`
    ids, 1 to 5 events per append, after whatever the journal holds already. Through
    the journal's own append, but without an fsync per commit: fast enough to build
    tens of thousands of events in a test."""
    rng = random.Random(seed)
    states = {
        item_id: (state.version, state.live)
        for item_id, state in (fold_journal(journal) if Path(journal).exists() else {}).items()
    }
    opened = SqliteJournal.open(str(journal))
    # Test set-up only: durability is not what these journals are for.
    opened._conn.execute("PRAGMA synchronous = OFF")
    written = 0
    try:
        while written < count:
            item_id = f"item-{rng.randrange(items):05d}"
            version, live = states.get(item_id, (0, False))
            new: list[NewEvent] = []
            for _ in range(min(rng.randint(1, 5), count - written)):
                event: Event
                if not live:
                    event, live = ItemCreated(item_id, f"created at {written}"), True
                elif rng.random() < 0.15:
                    event, live = ItemDeleted(item_id), False
                else:
                    event = ItemUpdated(item_id, f"description {written} of {item_id}")
                new.append(NewEvent(new_uuid(), *encode(event)))
                written += 1
            append_once(opened, item_id, version, new, AppendMetadata(utc_now(), new_uuid()))
            states[item_id] = (version + len(new), live)
    finally:
        opened.close()


@functools.cache
def _journal_template(count: int, items: int, seed: int) -> Path:
    """A journal of `count` random events, built once per session and removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="cqrs-journal-template-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "journal.db"
    write_random_events(path, count, items=items, seed=seed)
    return path


def copy_of_random_journal(target: Path, count: int, *, items: int, seed: int = 1) -> Path:
    """A copy at `target` of a journal of `count` random events, built once per session.
    The copies share one journal id, like backups of one journal."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_journal_template(count, items, seed), target)
    return target
