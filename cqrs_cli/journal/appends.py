"""`Journal.append` for every backend: a batch of one append, with its idempotency check."""

from __future__ import annotations

from .records import AppendResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from .base import JournalBatch
    from .records import AppendMetadata, NewEvent


def append_once(
    batch: AbstractContextManager[JournalBatch],
    stream_id: str,
    expected_version: int,
    events: Sequence[NewEvent],
    metadata: AppendMetadata,
) -> AppendResult:
    """In one transaction: the events of `metadata.idempotency_key` if it was used
    already, else `events` appended at `expected_version` (WrongExpectedVersion if the
    stream moved on)."""
    with batch as opened:
        key = metadata.idempotency_key
        if key is not None:
            done = opened.find_by_idempotency_keys([key]).get(key)
            if done:
                return AppendResult(done, already_applied=True)
        opened.stream_version(stream_id)
        recorded = opened.append(stream_id, expected_version, events, metadata)
    return AppendResult(recorded, already_applied=False)
