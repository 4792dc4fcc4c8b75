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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from pg_server import PgServer, pg_server

from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.base import Fill, Journal
from cqrs_cli.journal.batching import append_once
from cqrs_cli.journal.chain import GENESIS
from cqrs_cli.journal.locator import create_journal, find_journal, open_journal
from cqrs_cli.journal.memory_journal import MemoryJournal
from cqrs_cli.journal.records import AppendMetadata, AppendResult, NewEvent, RecordedEvent

__all__ = ["pg_server"]  # the server fixture, for the postgres backend

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


def stream_linked(journal: Journal) -> bool:
    """Whether the backend links each event to its stream's previous event (concurrent
    writers) rather than to the journal's previous one (journal/chain.py)."""
    return type(journal).__name__ == "PostgresJournal"


def expected_link(journal: Journal, earlier: Sequence[RecordedEvent], stream_id: str) -> str:
    """The prev_hash of the next event of `stream_id`, after `earlier` (the journal so
    far, in position order)."""
    if stream_linked(journal):
        own = [e for e in earlier if e.stream_id == stream_id]
        return own[-1].hash if own else GENESIS
    return earlier[-1].hash if earlier else GENESIS


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


class PostgresBackend(Backend):
    """A schema of its own per journal, on the session's server (tests/pg_server.py)."""

    name = "postgres"
    server: PgServer

    def _url(self) -> str:
        return self.server.new_schema_url()

    def new(self) -> Journal:
        journal = open_journal(self._url())
        self.opened.append(journal)
        return journal

    def another_handle(self, journal: Journal) -> Journal:
        # The server trusts the tests' connections: the shown locator (no password)
        # reaches the same journal.
        other = open_journal(journal.locator)
        self.opened.append(other)
        return other

    def assert_lock_free(self, journal: Journal) -> None:
        import psycopg2

        from cqrs_cli.journal.postgres_journal import PostgresJournal

        assert isinstance(journal, PostgresJournal)
        conn = psycopg2.connect(journal.locator.partition("?")[0])
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s, %s)", journal.lock_keys)
                assert cur.fetchone() == (True,), "a batch still holds the reservation lock"
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", journal.lock_keys)
        finally:
            conn.close()

    def create_from(self) -> tuple[Callable[[str, Fill], int], Callable[[], Journal | None]]:
        url = self._url()

        def create(journal_id: str, fill: Fill) -> int:
            return create_journal(url, journal_id, fill)

        def opened() -> Journal | None:
            found = find_journal(url)
            if found is not None:
                self.opened.append(found)
            return found

        return create, opened

    def rewrite(self, journal: Journal, position: int, **changes: object) -> None:
        from cqrs_cli.journal.postgres_journal import PostgresJournal

        assert isinstance(journal, PostgresJournal)
        table = f'"{journal.schema}".events'
        for column, value in changes.items():
            self.server.sql(
                f"ALTER TABLE {table} DISABLE TRIGGER events_append_only; "
                f"UPDATE {table} SET {column} = {_literal(value)} WHERE position = {position}; "
                f"ALTER TABLE {table} ENABLE TRIGGER events_append_only"
            )

    def delete(self, journal: Journal, position: int) -> None:
        """Remove the stored event at `position` behind the journal's back."""
        from cqrs_cli.journal.postgres_journal import PostgresJournal

        assert isinstance(journal, PostgresJournal)
        table = f'"{journal.schema}".events'
        self.server.sql(
            f"ALTER TABLE {table} DISABLE TRIGGER events_append_only; "
            f"DELETE FROM {table} WHERE position = {position}; "
            f"ALTER TABLE {table} ENABLE TRIGGER events_append_only"
        )


def _literal(value: object) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


BACKENDS: dict[str, type[Backend]] = {
    "sqlite": SqliteBackend,
    "memory": MemoryBackend,
    "postgres": PostgresBackend,
}


def make_backend(name: str, folder: Path, request: pytest.FixtureRequest) -> Backend:
    """The adapter of backend `name`, with what it needs (the server, for postgres)."""
    made = BACKENDS[name](folder)
    if isinstance(made, PostgresBackend):
        made.server = request.getfixturevalue("pg_server")
    return made


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each contract test runs once per backend."""
    made = make_backend(request.param, tmp_path, request)
    yield made
    made.close()


@pytest.fixture
def journal(backend: Backend) -> Journal:
    """A new, empty journal of the backend under test."""
    return backend.new()
