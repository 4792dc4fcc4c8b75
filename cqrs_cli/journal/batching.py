"""What every backend's batch shares: the version check of an append, the hash chain
carried in memory, and the checks of a restored event. A backend's batch subclasses
`LinkedBatch` and says how it buffers events and reads a stream's version.
`append_once` appends one command's events to any journal, as a batch of one.

The chain has two kinds of link (journal/chain.py): a backend with one writer at a time
links each event to the journal's previous event (`_prev_hash`); a backend with
concurrent writers links it to its stream's previous event (`_stream_heads`, filled as
the batch reads stream versions), which the stream's version check already serialises."""

from __future__ import annotations

from ..errors import StorageError, WrongExpectedVersion
from .chain import GENESIS, event_hash
from .records import AppendResult, RecordedEvent, intact_state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .base import Journal
    from .chain import EventHash
    from .records import AppendMetadata, NewEvent, StateRecord

_row = RecordedEvent.from_row


class LinkedBatch:
    """A batch's bookkeeping. The backend sets `_prev_hash` and `_next_position` from the
    journal's last event when the batch begins (under its write lock), and keeps
    `_versions`, the versions of the streams read this round."""

    def __init__(self, where: str) -> None:
        self._where = where
        """The journal's locator, for messages."""
        self._versions: dict[str, int] = {}
        self._prev_hash = GENESIS
        self._next_position = 1
        self._stream_heads: dict[str, str] | None = None
        """Per-stream links: each stream's last hash (GENESIS for a new stream), set by
        the backend for the streams it read this round; None: journal-order links."""
        self._ready = True
        """False until `_prepare` has run: a backend that assigns positions only once
        it appends (under a lock) sets it False."""
        # The builtin SHA-256 until a batch is big enough for OpenSSL's to pay for
        # importing hashlib (see chain.bulk_event_hash): single commands stay lean.
        self._hash: EventHash = event_hash

    def _buffer(self, events: list[RecordedEvent]) -> None:
        """Keep `events` for the commit (the backend's part)."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Set `_next_position` before the batch's first append or restore, and set
        `_ready` (the backend's part, when it starts with `_ready` False)."""
        raise NotImplementedError

    def stream_version(self, stream_id: str) -> int:
        raise NotImplementedError

    def go_on_from(self, stream_id: str, version: int, head: str) -> bool:
        """By default the version read here, under the batch's lock, decides."""
        return self.stream_version(stream_id) == version

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: AppendMetadata,
    ) -> list[RecordedEvent]:
        """Buffer `events` as the stream's next versions; WrongExpectedVersion if the
        stream is not at `expected_version`. (Written for speed: `cqrs apply` calls it
        once per command.)"""
        actual = self._versions.get(stream_id)
        if actual is None:
            raise RuntimeError(f"append to stream {stream_id!r} without reading its version")
        if actual != expected_version:
            raise WrongExpectedVersion(stream_id, expected_version, actual)
        if not self._ready:
            self._prepare()
        heads = self._stream_heads
        recorded_at = metadata.recorded_at
        command_id = metadata.command_id
        key = metadata.idempotency_key
        correlation_id = metadata.correlation_id
        recorded: list[RecordedEvent] = []
        hash_event = self._hash
        prev_hash = self._prev_hash if heads is None else heads[stream_id]
        position = self._next_position
        version = expected_version
        for event in events:
            version += 1
            fields = (
                event.event_id,
                stream_id,
                version,
                event.event_type,
                event.schema_version,
                event.data,
                recorded_at,
                command_id,
                key,
                correlation_id,
            )
            digest = hash_event(prev_hash, *fields)
            recorded.append(_row((position, *fields, prev_hash, digest)))
            prev_hash = digest
            position += 1
        self._buffer(recorded)
        self._prev_hash = prev_hash
        if heads is not None:
            heads[stream_id] = prev_hash
        self._next_position = position
        self._versions[stream_id] = version
        return recorded

    def restore(self, event: RecordedEvent) -> None:
        """Buffer an event recorded elsewhere exactly as it is (an import); StorageError
        unless its position is above the last one and it is its stream's next version."""
        if not self._ready:
            self._prepare()
        if event.position < self._next_position:
            raise StorageError(
                f"{self._where}: position {event.position} does not increase "
                f"(the journal is at {self._next_position - 1})"
            )
        version = self.stream_version(event.stream_id)
        if event.stream_version != version + 1:
            raise StorageError(
                f"{self._where}: stream {event.stream_id!r} goes from version {version} "
                f"to {event.stream_version}"
            )
        self._buffer([event])
        self._versions[event.stream_id] = event.stream_version
        if self._stream_heads is not None:
            self._stream_heads[event.stream_id] = event.hash
        self._prev_hash = event.hash
        self._next_position = event.position + 1


def append_once(
    journal: Journal,
    stream_id: str,
    expected_version: int,
    events: Sequence[NewEvent],
    metadata: AppendMetadata,
) -> AppendResult:
    """One command's events appended to any journal in a batch of their own: the
    events of `metadata.idempotency_key` if it was used already, else `events` at
    `expected_version` (WrongExpectedVersion if the stream moved on)."""
    with journal.batch(single=True) as opened:
        key = metadata.idempotency_key
        if key is not None:
            done = opened.find_by_idempotency_keys([key]).get(key)
            if done:
                return AppendResult(done, already_applied=True)
        opened.stream_version(stream_id)
        recorded = opened.append(stream_id, expected_version, events, metadata)
    return AppendResult(recorded, already_applied=False)


def intact_records(rows: Iterable[tuple[object, ...]]) -> dict[str, StateRecord]:
    """The intact state records among stored rows, by stream (a damaged one is none)."""
    found: dict[str, StateRecord] = {}
    for row in rows:
        record = intact_state(row)
        if record is not None:
            found[record.stream_id] = record
    return found


def events_by_key(events: Iterable[RecordedEvent]) -> dict[str, list[RecordedEvent]]:
    """Events found by their idempotency keys, grouped by key, in the order given."""
    found: dict[str, list[RecordedEvent]] = {}
    for event in events:
        assert event.idempotency_key is not None
        found.setdefault(event.idempotency_key, []).append(event)
    return found
