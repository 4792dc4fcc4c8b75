"""The journal interface: everything the rest of cqrs may ask of an event store.

Kept narrow on purpose, so that a second backend (a server database for teams) is one
new class. Imported for type checking only: implementations match it structurally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .records import AppendMetadata, AppendResult, NewEvent, RecordedEvent


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

    def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Up to `limit` events with position > `after`, in position order."""
        ...

    def head(self) -> int:
        """The highest position in the journal (0 when empty)."""
        ...

    def count_after(self, position: int) -> int:
        """How many events have a position above `position`."""
        ...

    def close(self) -> None: ...
