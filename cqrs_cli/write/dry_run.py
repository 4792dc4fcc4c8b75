"""`--dry-run`: a command decided through the same pipeline as a real one, over a batch
that only plans.

`PlanningBatch` answers the `JournalBatch` calls the pipeline makes with plain reads of
a journal opened read-only (or of no journal at all, when none exists yet) and keeps
what would be appended to itself: a dry run takes no write lock, creates no file and
writes nothing.
"""

from __future__ import annotations

from ..errors import ConflictError, NotFoundError, StorageError, WrongExpectedVersion
from ..journal.records import RecordedEvent
from .pipeline import ALREADY_APPLIED, write_one, write_result
from .results import OUTCOME_BY_EVENT, PlannedEvent, WriteResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..journal.base import Journal
    from ..journal.records import AppendMetadata, NewEvent
    from .pipeline import BatchCommand


PLANNED = 0
"""The position of a planned event, which has none (nor hashes) until it is appended:
the dry run's result drops both (results.PlannedEvent)."""


class PlanningBatch:
    """A `JournalBatch` that reads `journal` (None: an empty journal) and plans appends.
    Its reads are not one snapshot: each is the journal as it is at that moment."""

    def __init__(self, journal: Journal | None) -> None:
        self._journal = journal
        self._versions: dict[str, int] = {}

    def __enter__(self) -> PlanningBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._versions.clear()

    def stream_version(self, stream_id: str) -> int:
        if stream_id not in self._versions:
            events = self._journal.read_stream(stream_id) if self._journal is not None else []
            self._versions[stream_id] = events[-1].stream_version if events else 0
        return self._versions[stream_id]

    def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        found: dict[str, list[RecordedEvent]] = {}
        for stream_id in dict.fromkeys(stream_ids):
            events = self._journal.read_stream(stream_id) if self._journal is not None else []
            if events:
                found[stream_id] = events
            self._versions[stream_id] = events[-1].stream_version if events else 0
        return found

    def find_by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        found: dict[str, list[RecordedEvent]] = {}
        if self._journal is not None:
            for key in dict.fromkeys(keys):
                events = self._journal.find_by_idempotency_key(key)
                if events:
                    found[key] = events
        return found

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: AppendMetadata,
    ) -> list[RecordedEvent]:
        """The events as they would be recorded, without position or hashes."""
        actual = self._versions.get(stream_id)
        if actual is None:
            raise RuntimeError(f"append to stream {stream_id!r} without reading its version")
        if actual != expected_version:
            raise WrongExpectedVersion(stream_id, expected_version, actual)
        planned: list[RecordedEvent] = []
        version = expected_version
        for event in events:
            version += 1
            planned.append(
                RecordedEvent.from_row(
                    (
                        PLANNED,
                        event.event_id,
                        stream_id,
                        version,
                        event.event_type,
                        event.schema_version,
                        event.data,
                        metadata.recorded_at,
                        metadata.command_id,
                        metadata.idempotency_key,
                        metadata.correlation_id,
                        "",
                        "",
                    )
                )
            )
        self._versions[stream_id] = version
        return planned

    def restore(self, event: RecordedEvent) -> None:
        raise StorageError("a dry run restores nothing")


def plan(
    journal: Journal | None,
    command: BatchCommand,
    recorded_at: str,
    new_id: Callable[[], str],
) -> WriteResult:
    """What `command` would do to `journal` (None: there is none yet), written nowhere.
    An unchanged or already applied command gives the result a real run would."""
    with PlanningBatch(journal) as batch:
        try:
            verdict, state, events, position = write_one(batch, command, recorded_at, new_id)
        except (ConflictError, NotFoundError):
            # The reads are not one snapshot: a retry whose first attempt committed
            # between the key lookup and the stream read looks wrong on the new state,
            # while its key says it was applied (as a real run, in one transaction, sees).
            key = command.idempotency_key
            if key is None or not batch.find_by_idempotency_keys((key,)):
                raise
            verdict, state, events, position = write_one(batch, command, recorded_at, new_id)
    item_id = command.command.item_id
    if verdict == ALREADY_APPLIED or not events:
        return write_result(item_id, verdict, state, events, position)
    planned = tuple(
        PlannedEvent(e.stream_id, e.stream_version, e.event_type, e.schema_version, e.data)
        for e in events
    )
    return WriteResult(
        item_id,
        OUTCOME_BY_EVENT[planned[0].event_type],
        planned[-1].stream_version,
        position,
        planned,
        dry_run=True,
    )
