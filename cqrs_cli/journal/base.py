"""The journal interface: everything the domain-facing code may ask of an event store.

Kept narrow on purpose, so that a second backend (a server database for teams) is one
new class. Imported for type checking only: implementations match it structurally.
File-level tools (verify's integrity checks, backup, import) are the SQLite backend's
own and live beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from .records import AppendMetadata, AppendResult, NewEvent, RecordedEvent


class JournalBatch(Protocol):
    """Many appends in one transaction: all committed, or none."""

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0: no events), as seen inside the batch."""
        ...

    def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        """The events of each stream that has any, in version order, including the
        batch's own appends; starts a new round."""
        ...

    def find_by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        """The events appended under each key already used (the batch's own included)."""
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


class Journal(Protocol):
    @property
    def journal_id(self) -> str:
        """The UUID naming this journal; a projection records the journal it was built from."""
        ...

    def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        """The stream's events in version order (empty if it has none)."""
        ...

    def find_by_idempotency_key(self, key: str) -> list[RecordedEvent]:
        """The events appended under `key`, in position order (empty if none)."""
        ...

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: AppendMetadata,
    ) -> AppendResult:
        """Atomically: if `metadata.idempotency_key` was used already, return its events
        as already applied; else if the stream is not at `expected_version`, raise
        WrongExpectedVersion; else append `events` as its next versions, durably."""
        ...

    def batch(self) -> AbstractContextManager[JournalBatch]:
        """A transaction for many appends (`cqrs apply`)."""
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
        only one stream's or one type's."""
        ...

    def head(self) -> int:
        """The highest position in the journal (0 when empty)."""
        ...

    def count_after(self, position: int) -> int:
        """How many events have a position above `position`."""
        ...

    def close(self) -> None: ...
