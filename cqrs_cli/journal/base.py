"""The journal contract: everything the rest of cqrs may ask of an event store.

Every caller (the write side, sync, the read side's status and time travel, the journal
tools, the CLI) holds a `Journal` opened by `journal.locator` and uses nothing else; a
backend is one module that implements these protocols and one line in the locator.
Backends today: `sqlite_journal` (one local file, the default), `postgres_journal` (a
server, for many writers on many hosts) and `memory_journal` (in-process, for the Python
API and fast tests). tests/contract/ holds the behaviour
every backend must show, written once and run against each.

The contract
------------
Atomic appends.
    The appends of one batch (`Journal.batch()`) are committed all together or not at
    all (`journal.batching.append_once` makes a batch of one, for one command). When a
    batch's `with` block exits without an exception, its events are durable.
Per-stream optimistic concurrency.
    Each stream (an item) has versions 1, 2, 3 ... with no gap. A batch's `append` is
    given the version the caller decided on and raises WrongExpectedVersion unless the stream is
    still at it; two writers can never both append version n. A backend that learns of
    a conflict only at commit raises WrongExpectedVersion from the batch's exit, and the
    caller decides again (write/command_service.py does).
Idempotency keys.
    Events appended under a key are found by it (`find_by_idempotency_key[s]`). Inside a
    batch the lookup sees every committed key and the batch's own, so "look up the key,
    then append" in one batch applies a command at most once, even when its retries race.
Positions and read order.
    Every event gets a position, increasing in commit order, never reused; gaps are
    allowed. `read_all(after=P)` returns events in position order, and a reader that has
    seen position P never later sees a new event with a position at or below P: readers
    checkpoint at the last position they saw and ask for what comes after it. (SQLite
    gives this by serialising writers; PostgreSQL by handing out positions with
    transaction ids and reading only below the oldest open transaction.)
The hash chain.
    Each event's `hash` covers its content and `prev_hash`: the hash of the journal's
    previous event (a backend with one writer at a time) or of its stream's previous
    event (concurrent writers), GENESIS for the first (journal/chain.py). A backend
    stores both as given, and verify and import accept either link.
State records.
    Beside its events a journal keeps, per stream, at most one `StateRecord`: the
    stream's state as of one of its events, encoded by the domain, saved by the write
    side in the same batch as the events it summarises, so that deciding a command
    costs the same whatever the stream's length. It is a cache: it is not exported,
    and a reader that finds it missing, or not matching the event it names (by version
    and hash), folds the stream's events instead. `journal verify` checks every record
    against the fold of its events.
Identity.
    `journal_id` names the journal for life (an import keeps it); a projection records
    the id of the journal it was built from.
Change notice.
    `wait_for_change(after, timeout)` returns True as soon as the head is above `after`
    (at once if it already is), whoever committed (another process, another handle,
    this one), else False after `timeout` seconds; it holds no read transaction while
    it waits, and Ctrl-C interrupts it. How promptly it notices is the backend's
    business (SQLite: a `PRAGMA data_version` every few ms; in memory: the commit wakes
    it), so that followers (`cqrs sync --follow`, `cqrs events --follow`) apply a
    commit within milliseconds without reading the journal in a tight loop.

Capabilities
------------
What only some backends can do is declared, not assumed. `Journal.local_file()` returns
a `JournalFile` for a journal kept in one local SQLite file, else None; callers take a
generic path through the protocol when it is None:

    capability (JournalFile)          used by                      generic path
    sqlite_uri: ATTACH for bulk SQL   sync's first build, rebuild  replay through the views
    integrity/schema problems         journal verify               (skipped: no file)
    stream_version_fault in SQL       journal verify               a walk in Python
    backup_to: online file copy       journal backup               `cqrs journal export`

Imported for type checking only: implementations match these protocols structurally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from .records import AppendMetadata, NewEvent, RecordedEvent, StateRecord


class JournalBatch(Protocol):
    """Many appends in one transaction: all committed, or none (`cqrs apply`, and every
    single command, which is a batch of one)."""

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0: no events), as seen inside the batch."""
        ...

    def go_on_from(self, stream_id: str, version: int, head: str) -> bool:
        """Whether the batch may append to the stream after `version`, as its caller
        read the stream before the batch began (`head`: the hash of that version's
        event, GENESIS for none); False: the stream has moved on, read it again.
        Starts a new round. A batch under a write lock compares with the version it
        reads; a batch whose commit refuses a stale version by itself (a unique
        constraint: a single command on a server journal) takes the caller's word
        without a read, and raises WrongExpectedVersion at commit if it was stale."""
        ...

    def read_streams(
        self, stream_ids: Sequence[str], from_versions: Mapping[str, int] | None = None
    ) -> dict[str, list[RecordedEvent]]:
        """The events of each stream that has any, in version order, including the
        batch's own appends, from version `from_versions[stream]` (default 1) on;
        starts a new round, in which each stream's version is its last event's."""
        ...

    def read_states(self, stream_ids: Sequence[str]) -> dict[str, StateRecord]:
        """The state records of those streams that have one, the batch's own saves
        included; starts a new round."""
        ...

    def save_state(self, record: StateRecord) -> None:
        """Keep `record` as its stream's state record (replacing any), with the batch."""
        ...

    def find_by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        """The events appended under each key already used (the batch's own included);
        starts a new round, so keys are looked up before a round's streams are read."""
        ...

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: AppendMetadata,
    ) -> list[RecordedEvent]:
        """The stream's next versions, with positions; WrongExpectedVersion unless the
        stream (read this round) is at `expected_version`."""
        ...

    def restore(self, event: RecordedEvent) -> None:
        """Store an event recorded elsewhere exactly as it is (position, ids, time,
        hashes): how an import rebuilds a journal. StorageError unless its position is
        above every stored one and it is its stream's next version; the caller checks
        the hash chain."""
        ...


class JournalFile(Protocol):
    """The capability of a journal kept in one local SQLite file."""

    path: str

    def sqlite_uri(self) -> str:
        """A read-only URI of the file, to ATTACH to another SQLite connection."""
        ...

    def integrity_problem(self) -> str | None:
        """None if SQLite's integrity check passes, else its first complaint."""
        ...

    def schema_problem(self) -> str | None:
        """None if the file's markers, tables, append-only triggers and id are intact."""
        ...

    def stream_version_fault(self) -> tuple[int, str] | None:
        """The first (position, problem) where a stream's versions are not 1, 2, 3 ...
        in position order; None if there is none."""
        ...

    def stream_count(self) -> int:
        """How many streams have events."""
        ...

    def backup_to(self, dest: str) -> None:
        """Copy the whole journal into the new file `dest` as one consistent snapshot,
        while writers go on appending."""
        ...


class Journal(Protocol):
    @property
    def journal_id(self) -> str:
        """The UUID naming this journal; a projection records the journal it was built from."""
        ...

    @property
    def locator(self) -> str:
        """Where the journal is, as shown to people (never with a password in it)."""
        ...

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        """The stream's events in version order, from `from_version` on (empty if it
        has none)."""
        ...

    def read_state(self, stream_id: str) -> StateRecord | None:
        """The stream's state record, if it has one."""
        ...

    def read_tail(self, stream_id: str) -> list[RecordedEvent]:
        """The stream's events from the version of its state record on (all of them
        without one), in one read: what a writer folds onto the record."""
        ...

    def state_records(self, after: str = "", limit: int = 1000) -> list[StateRecord]:
        """Up to `limit` state records of streams whose id sorts after `after`, in that
        order (for `journal verify`)."""
        ...

    def find_by_idempotency_key(self, key: str) -> list[RecordedEvent]:
        """The events appended under `key`, in position order (empty if none)."""
        ...

    def batch(self, *, single: bool = False) -> AbstractContextManager[JournalBatch]:
        """A transaction for many appends. `single`: the batch makes one append (one
        command's) after its reads, and its caller looks at the appended events'
        positions only once the batch has exited: a backend may then assign positions
        at the commit (PostgreSQL does, to take and give back its reservation lock in
        the statement that inserts, never across a round trip to the client)."""
        ...

    def read_all(
        self,
        after: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        event_type: str | None = None,
    ) -> list[RecordedEvent]:
        """Up to `limit` events with position > `after`, in position order, optionally
        only one stream's or one type's. No read transaction is held after it returns."""
        ...

    def head(self) -> int:
        """The highest position in the journal (0 when empty)."""
        ...

    def count_after(self, position: int) -> int:
        """How many events have a position above `position`."""
        ...

    def read_for_build(self, after: int, up_to: int, limit: int) -> list[tuple[object, ...]]:
        """Up to `limit` events after position `after` and up to `up_to`, in position
        order, as rows of records.BUILD_COLUMNS only: what a journal without a file of
        its own is copied as for a build in SQL (sync/staging.py), without the columns
        no build reads nor an event object per row."""
        ...

    def wait_for_change(self, after: int, timeout: float) -> bool:
        """True as soon as the head is above `after` (at once if it already is), False
        when `timeout` seconds pass first. Holds no read transaction while waiting."""
        ...

    def local_file(self) -> JournalFile | None:
        """The journal's SQLite file, if it is kept in one (see Capabilities)."""
        ...

    def close(self) -> None: ...


Fill = Callable[[JournalBatch], int]
"""Fills a new journal through its batch (`restore`) and returns how many events it
stored: what `journal import` hands a backend."""


class Backend(Protocol):
    """One kind of journal: how the locator opens, creates and imports it."""

    def exists(self, locator: str) -> bool:
        """Whether a journal is at `locator`; StorageError if something else is."""
        ...

    def find(self, locator: str) -> Journal | None:
        """The existing journal at `locator`, opened read-only; None if there is none
        yet. StorageError if something is there that is not a journal."""
        ...

    def open(self, locator: str) -> Journal:
        """The journal at `locator` for writing, created (empty) on first use."""
        ...

    def create_from(self, locator: str, journal_id: str, fill: Fill) -> int:
        """A new journal named `journal_id` at `locator`, filled by `fill`; UsageError if
        one exists there already. All or nothing: if `fill` raises, no journal is left."""
        ...
