"""The journal backends the contract suite (tests/contract/) runs against, each behind
one small adapter, and the fixtures that hand them to the tests.

Adding a backend to cqrs means adding an adapter here: every contract test then runs
against it too. An adapter knows what the contract leaves to the backend: how to make a
new journal, open a second handle on it (another connection, another process's view),
check that no batch is left holding the write lock, and tamper with stored events
behind the journal's back (for verify's tests).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.base import Fill, Journal
from cqrs_cli.journal.batching import append_once
from cqrs_cli.journal.locator import create_journal, find_journal, open_journal
from cqrs_cli.journal.memory_journal import MemoryJournal
from cqrs_cli.journal.records import AppendMetadata, AppendResult, NewEvent, RecordedEvent

RECORDED_AT = "2024-01-02T03:04:05.000006Z"
"""The recorded time of the events the contract tests append."""


def new_event(description: str = "", event_type: str = "ItemCreated") -> NewEvent:
    data = "{}" if event_type == "ItemDeleted" else f'{{"description":"{description}"}}'
    return NewEvent(new_uuid(), event_type, 1, data)


def append(
    journal: Journal,
    stream_id: str,
    expected_version: int,
    count: int = 1,
    *,
    key: str | None = None,
    correlation_id: str | None = None,
) -> AppendResult:
    """Append `count` events to `stream_id` as one command."""
    events = [new_event(f"{stream_id} #{expected_version + n}") for n in range(1, count + 1)]
    metadata = AppendMetadata(RECORDED_AT, new_uuid(), key, correlation_id)
    return append_once(journal, stream_id, expected_version, events, metadata)


def read_everything(journal: Journal, page: int = 7) -> list[RecordedEvent]:
    """Every event, read in pages of `page` (small, so that paging itself is tested)."""
    events: list[RecordedEvent] = []
    while batch := journal.read_all(after=events[-1].position if events else 0, limit=page):
        events += batch
    return events


class Backend:
    name = ""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.opened: list[Journal] = []
        self._made = 0

    def new(self) -> Journal:
        """A new, empty journal, open for writing."""
        raise NotImplementedError

    def another_handle(self, journal: Journal) -> Journal:
        """A second, independent handle on the same journal."""
        raise NotImplementedError

    def assert_lock_free(self, journal: Journal) -> None:
        """No batch is left open: another writer could start one at once."""
        raise NotImplementedError

    def create_from(self) -> tuple[Callable[[str, Fill], int], Callable[[], Journal | None]]:
        """What `import_journal` needs to build a new journal of this backend, and a way
        to open the journal it built afterwards (None if it built none)."""
        raise NotImplementedError

    def rewrite(self, journal: Journal, position: int, **changes: object) -> None:
        """Change the stored event at `position` behind the journal's back."""
        raise NotImplementedError

    def close(self) -> None:
        for journal in self.opened:
            journal.close()


class SqliteBackend(Backend):
    name = "sqlite"

    def _path(self) -> str:
        self._made += 1
        return str(self.folder / f"journal-{self._made}.db")

    def new(self) -> Journal:
        journal = open_journal(self._path())
        self.opened.append(journal)
        return journal

    def another_handle(self, journal: Journal) -> Journal:
        other = open_journal(journal.locator)
        self.opened.append(other)
        return other

    def assert_lock_free(self, journal: Journal) -> None:
        conn = sqlite3.connect(journal.locator, isolation_level=None, timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def create_from(self) -> tuple[Callable[[str, Fill], int], Callable[[], Journal | None]]:
        path = self._path()

        def create(journal_id: str, fill: Fill) -> int:
            return create_journal(path, journal_id, fill)

        def opened() -> Journal | None:
            found = find_journal(path)
            if found is None:
                return None
            found.close()
            journal = open_journal(path)
            self.opened.append(journal)
            return journal

        return create, opened

    def rewrite(self, journal: Journal, position: int, **changes: object) -> None:
        conn = sqlite3.connect(journal.locator, isolation_level=None)
        try:
            # Around the append-only trigger, which is put back: only the event changes.
            (trigger,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'events_append_only_update'"
            ).fetchone()
            conn.execute("DROP TRIGGER events_append_only_update")
            for column, value in changes.items():
                conn.execute(
                    f"UPDATE events SET {column} = ? WHERE position = ?", (value, position)
                )
            conn.execute(trigger)
        finally:
            conn.close()


class MemoryBackend(Backend):
    name = "memory"

    def new(self) -> Journal:
        return MemoryJournal()

    def another_handle(self, journal: Journal) -> Journal:
        return journal  # one process, one object: what every thread shares

    def assert_lock_free(self, journal: Journal) -> None:
        assert isinstance(journal, MemoryJournal)
        acquired: list[bool] = []
        # From another thread: the lock is re-entrant, so this thread could always take it.
        thread = threading.Thread(target=lambda: acquired.append(_try_lock(journal)))
        thread.start()
        thread.join()
        assert acquired == [True], "a batch still holds the journal's lock"

    def create_from(self) -> tuple[Callable[[str, Fill], int], Callable[[], Journal | None]]:
        made: list[Journal] = []

        def create(journal_id: str, fill: Fill) -> int:
            journal = MemoryJournal(journal_id)
            with journal.batch() as batch:
                count = fill(batch)
            made.append(journal)
            return count

        return create, lambda: made[0] if made else None

    def rewrite(self, journal: Journal, position: int, **changes: object) -> None:
        assert isinstance(journal, MemoryJournal)
        events = journal._events
        index = next(i for i, e in enumerate(events) if e.position == position)
        changed = events[index]._replace(**changes)  # type: ignore[arg-type]
        events[index] = RecordedEvent.from_row(tuple(changed))
        stream = journal._streams[changed.stream_id]
        stream[:] = [changed if e.position == position else e for e in stream]


def _try_lock(journal: MemoryJournal) -> bool:
    if journal._lock.acquire(timeout=1):
        journal._lock.release()
        return True
    return False


BACKENDS: dict[str, type[Backend]] = {"sqlite": SqliteBackend, "memory": MemoryBackend}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each contract test runs once per backend."""
    made = BACKENDS[request.param](tmp_path)
    yield made
    made.close()


@pytest.fixture
def journal(backend: Backend) -> Journal:
    """A new, empty journal of the backend under test."""
    return backend.new()
