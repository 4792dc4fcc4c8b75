"""A journal held in this process's memory: the second backend of the contract.

For the Python API (a CommandService and a QueryService over one in-memory journal,
nothing on disk) and for fast tests. It keeps every promise of journal/base.py within
one process: batches are all or nothing, positions follow commit order, the hash chain
is computed as on disk, and threads are serialised by one lock, held by a batch from
its start to its commit as SQLite's write lock is. Nothing survives the process.

    journal = MemoryJournal()
    CommandService(journal=journal).create_item("Item1")
"""

from __future__ import annotations

import threading

from ..errors import StorageError
from ..ids import new_uuid
from .batching import LinkedBatch
from .chain import GENESIS
from .records import RecordedEvent, StateRecord, build_rows

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class MemoryJournal:
    def __init__(self, journal_id: str | None = None) -> None:
        self._id = journal_id or new_uuid()
        self._events: list[RecordedEvent] = []
        self._streams: dict[str, list[RecordedEvent]] = {}
        self._keys: dict[str, list[RecordedEvent]] = {}
        self._event_ids: set[str] = set()
        self._states: dict[str, StateRecord] = {}
        # Re-entrant, so that a reader in the thread holding a batch can still read.
        self._lock = threading.RLock()
        # Notified at each commit. Its own lock, taken after `_lock` (never before it),
        # guards `_head`: a waiter never needs `_lock`, which a batch may hold for long.
        self._changed = threading.Condition(threading.Lock())
        self._head = 0

    @property
    def journal_id(self) -> str:
        return self._id

    @property
    def locator(self) -> str:
        return f"memory:{self._id}"

    def local_file(self) -> None:
        return None

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        with self._lock:
            # Versions are 1, 2, 3 ...: version v is at index v - 1.
            return list(self._streams.get(stream_id, [])[max(from_version, 1) - 1 :])

    def read_state(self, stream_id: str) -> StateRecord | None:
        with self._lock:
            return self._states.get(stream_id)

    def read_tail(self, stream_id: str) -> list[RecordedEvent]:
        with self._lock:
            record = self._states.get(stream_id)
            length = len(self._streams.get(stream_id, ()))
            # A record past the stream's end must not hide its events.
            first = record.version if record is not None and record.version <= length else 1
            return self.read_stream(stream_id, first)

    def state_records(self, after: str = "", limit: int = 1000) -> list[StateRecord]:
        with self._lock:
            return [self._states[s] for s in sorted(self._states) if s > after][:limit]

    def find_by_idempotency_key(self, key: str) -> list[RecordedEvent]:
        with self._lock:
            return list(self._keys.get(key, ()))

    def batch(self, *, single: bool = False) -> MemoryBatch:
        return MemoryBatch(self)

    def read_all(
        self,
        after: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        event_type: str | None = None,
    ) -> list[RecordedEvent]:
        with self._lock:
            source = self._events if stream_id is None else self._streams.get(stream_id, [])
            start = _first_after(source, after)
            found: list[RecordedEvent] = []
            for event in source[start:]:
                if len(found) >= limit:
                    break
                if event_type is None or event.event_type == event_type:
                    found.append(event)
            return found

    def read_for_build(self, after: int, up_to: int, limit: int) -> list[tuple[object, ...]]:
        return build_rows(self.read_all(after, limit), up_to)

    def head(self) -> int:
        with self._lock:
            return self._events[-1].position if self._events else 0

    def count_after(self, position: int) -> int:
        with self._lock:
            return len(self._events) - _first_after(self._events, position)

    def wait_for_change(self, after: int, timeout: float) -> bool:
        """Woken by each commit: no polling at all."""
        with self._changed:
            return self._changed.wait_for(lambda: self._head > after, timeout)

    def close(self) -> None:
        """Nothing to release: the events stay for other holders of this object."""

    def __enter__(self) -> MemoryJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _commit(self, events: list[RecordedEvent], states: dict[str, StateRecord]) -> None:
        self._states.update(states)
        for event in events:
            self._event_ids.add(event.event_id)
            self._events.append(event)
            self._streams.setdefault(event.stream_id, []).append(event)
            if event.idempotency_key is not None:
                self._keys.setdefault(event.idempotency_key, []).append(event)
        if events:
            with self._changed:
                self._head = events[-1].position
                self._changed.notify_all()


def _first_after(events: list[RecordedEvent], position: int) -> int:
    """The index of the first event with a position above `position` (binary search:
    positions increase along the list)."""
    low, high = 0, len(events)
    while low < high:
        middle = (low + high) // 2
        if events[middle].position <= position:
            low = middle + 1
        else:
            high = middle
    return low


class MemoryBatch(LinkedBatch):
    """A transaction on a MemoryJournal: appends are buffered and become visible to
    others only at a commit, all together."""

    def __init__(self, journal: MemoryJournal) -> None:
        super().__init__(journal.locator)
        self._journal = journal
        self._pending: list[RecordedEvent] = []
        self._pending_streams: dict[str, list[RecordedEvent]] = {}
        self._pending_keys: dict[str, list[RecordedEvent]] = {}
        self._pending_ids: set[str] = set()
        self._pending_states: dict[str, StateRecord] = {}

    def __enter__(self) -> MemoryBatch:
        journal = self._journal
        journal._lock.acquire()
        last = journal._events[-1] if journal._events else None
        self._prev_hash = last.hash if last is not None else GENESIS
        self._next_position = last.position + 1 if last is not None else 1
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        try:
            if exc_type is None:
                self._journal._commit(self._pending, self._pending_states)
        finally:
            self._pending = []
            self._pending_streams = {}
            self._pending_keys = {}
            self._pending_ids = set()
            self._pending_states = {}
            self._journal._lock.release()

    def _new_round(self) -> None:
        # The contract's rule, kept as the SQLite batch keeps it: an append must follow
        # a read of its stream's version in the same round.
        self._versions.clear()

    def stream_version(self, stream_id: str) -> int:
        version = self._versions.get(stream_id)
        if version is None:
            self._new_round()
            # The batch's own appends first, then the committed ones.
            stored = self._pending_streams.get(stream_id) or self._journal._streams.get(stream_id)
            version = stored[-1].stream_version if stored else 0
            self._versions[stream_id] = version
        return version

    def read_streams(
        self, stream_ids: Sequence[str], from_versions: Mapping[str, int] | None = None
    ) -> dict[str, list[RecordedEvent]]:
        self._new_round()
        found: dict[str, list[RecordedEvent]] = {}
        for stream_id in dict.fromkeys(stream_ids):
            events = self._journal._streams.get(stream_id, []) + self._pending_streams.get(
                stream_id, []
            )
            first = from_versions.get(stream_id, 1) if from_versions else 1
            if first > 1:
                events = events[first - 1 :]
            if events:
                found[stream_id] = events
                self._versions[stream_id] = events[-1].stream_version
            elif first <= 1:
                self._versions[stream_id] = 0
        return found

    def read_states(self, stream_ids: Sequence[str]) -> dict[str, StateRecord]:
        self._new_round()
        found: dict[str, StateRecord] = {}
        for stream_id in dict.fromkeys(stream_ids):
            record = self._pending_states.get(stream_id) or self._journal._states.get(stream_id)
            if record is not None:
                found[stream_id] = record
        return found

    def save_state(self, record: StateRecord) -> None:
        self._pending_states[record.stream_id] = record

    def find_by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        self._new_round()
        found: dict[str, list[RecordedEvent]] = {}
        for key in dict.fromkeys(keys):
            events = self._journal._keys.get(key, []) + self._pending_keys.get(key, [])
            if events:
                found[key] = events
        return found

    def _buffer(self, events: list[RecordedEvent]) -> None:
        """Add `events` to the batch; StorageError if an event id is stored already (as
        SQLite's unique index refuses it), after which the batch must be abandoned."""
        for event in events:
            event_id = event.event_id
            if event_id in self._pending_ids or event_id in self._journal._event_ids:
                raise StorageError(
                    f"{self._journal.locator}: append refused: event_id {event_id!r} "
                    "is stored already"
                )
            self._pending_ids.add(event_id)
        self._pending += events
        for event in events:
            self._pending_streams.setdefault(event.stream_id, []).append(event)
            key = event.idempotency_key
            if key is not None:
                self._pending_keys.setdefault(key, []).append(event)
