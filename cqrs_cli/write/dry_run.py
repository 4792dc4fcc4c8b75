"""`--dry-run`: a command decided through the same pipeline as a real one, over a batch
that only plans.

`PlanningBatch` answers the `JournalBatch` calls the pipeline makes with plain reads of
a journal opened read-only (or of no journal at all, when none exists yet) and keeps
what would be appended to itself: a dry run takes no write lock, creates no file and
writes nothing.
"""

from __future__ import annotations

from ..errors import ConflictError, NotFoundError
from ..journal.batching import LinkedBatch
from .pipeline import ALREADY_APPLIED, MAX_ATTEMPTS, StaleRead, write_one, write_result
from .results import OUTCOME_BY_EVENT, PlannedEvent, WriteResult
from .streams import NEW, load

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ..journal.base import Journal
    from ..journal.records import RecordedEvent, StateRecord
    from .pipeline import BatchCommand


class PlanningBatch(LinkedBatch):
    """A `JournalBatch` that reads `journal` (None: an empty journal) and keeps nothing
    it is given: the pipeline's appends go through the journal's own append logic
    (versions, the event envelope) and are dropped. Its reads are not one snapshot:
    each is the journal as it is at that moment."""

    def __init__(self, journal: Journal | None) -> None:
        super().__init__(journal.locator if journal is not None else "(no journal yet)")
        self._journal = journal

    def __enter__(self) -> PlanningBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._versions.clear()

    def _buffer(self, events: list[RecordedEvent]) -> None:
        """Planned, never stored."""

    def _stream(self, stream_id: str) -> list[RecordedEvent]:
        events = self._journal.read_stream(stream_id) if self._journal is not None else []
        self._versions[stream_id] = events[-1].stream_version if events else 0
        return events

    def stream_version(self, stream_id: str) -> int:
        if stream_id not in self._versions:
            self._stream(stream_id)
        return self._versions[stream_id]

    def read_streams(
        self, stream_ids: Sequence[str], from_versions: Mapping[str, int] | None = None
    ) -> dict[str, list[RecordedEvent]]:
        found = {stream_id: self._stream(stream_id) for stream_id in dict.fromkeys(stream_ids)}
        first = from_versions or {}
        return {
            stream_id: events[first.get(stream_id, 1) - 1 :]
            for stream_id, events in found.items()
            if events
        }

    def read_states(self, stream_ids: Sequence[str]) -> dict[str, StateRecord]:
        found: dict[str, StateRecord] = {}
        if self._journal is not None:
            for stream_id in dict.fromkeys(stream_ids):
                record = self._journal.read_state(stream_id)
                if record is not None:
                    found[stream_id] = record
        return found

    def save_state(self, record: StateRecord) -> None:
        """Planned, never stored."""

    def find_by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        found: dict[str, list[RecordedEvent]] = {}
        if self._journal is not None:
            for key in dict.fromkeys(keys):
                events = self._journal.find_by_idempotency_key(key)
                if events:
                    found[key] = events
        return found


def plan(
    journal: Journal | None,
    command: BatchCommand,
    recorded_at: str,
    new_id: Callable[[], str],
) -> WriteResult:
    """What `command` would do to `journal` (None: there is none yet), written nowhere.
    An unchanged or already applied command gives the result a real run would."""
    item_id = command.command.item_id
    for _ in range(MAX_ATTEMPTS):
        item = load(journal, item_id) if journal is not None else NEW
        try:
            with PlanningBatch(journal) as batch:
                verdict, state, events, position = write_one(
                    batch, command, item, recorded_at, new_id
                )
            break
        except StaleRead:
            continue  # a writer got there between two reads: plan again
        except (ConflictError, NotFoundError):
            # The reads are not one snapshot: a retry whose first attempt committed
            # between the key lookup and the stream read looks wrong on the new state,
            # while its key says it was applied (as a real run, in one transaction, sees).
            key = command.idempotency_key
            if key is None or not PlanningBatch(journal).find_by_idempotency_keys((key,)):
                raise
            with PlanningBatch(journal) as batch:  # the key settles it now
                verdict, state, events, position = write_one(
                    batch, command, item, recorded_at, new_id
                )
            break
    else:
        raise ConflictError(f"item {item_id!r} kept changing while the dry run read it; retry")
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
