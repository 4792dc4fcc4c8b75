"""One command's way into the journal, the same for `cqrs item ...` and `cqrs apply`.

A command line (the command and its options) is decided against its item's state and
its events are appended through a `JournalBatch`: a single command is a batch of one
(command_service.py), `cqrs apply` a batch of many, read and decided in rounds
(batch.py). Both call `decide_and_append` here for every command, and `write_result`
when their caller wants a WriteResult: so the key check, the expected-version check,
the decision and the stored form of events cannot drift apart between them.
"""

from __future__ import annotations

from ..domain.codec import encode
from ..domain.item import INITIAL, decide, evolve
from ..errors import ConflictError, WrongExpectedVersion
from ..journal.records import AppendMetadata, NewEvent
from .results import OUTCOME_BY_EVENT, WriteResult
from .streams import record_to_save

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Literal

    from ..domain.item import Command, ItemState
    from ..journal.base import JournalBatch
    from ..journal.records import RecordedEvent
    from .results import Outcome
    from .streams import Loaded

    Verdict = Outcome | Literal["already applied"]
    """What became of a command: its outcome, or that its idempotency key was used."""


# A named tuple: one is made per line of files of millions (a Record with five fields
# cost three times as much). mypy sees the typed NamedTuple; at run time it is the
# same class from collections.namedtuple, which does not import `typing` (start-up).
if TYPE_CHECKING:
    from typing import NamedTuple

    class BatchCommand(NamedTuple):
        """A command and its options: one line of a batch, or a single command (line 0)."""

        line: int
        command: Command
        expected_version: int | None = None
        idempotency_key: str | None = None
        correlation_id: str | None = None

else:
    from collections import namedtuple

    BatchCommand = namedtuple(
        "BatchCommand",
        ("line", "command", "expected_version", "idempotency_key", "correlation_id"),
        defaults=(None, None, None),
    )
    BatchCommand.__doc__ = (
        "A command and its options: one line of a batch, or a single command (line 0)."
    )


MAX_ATTEMPTS = 50
"""Reads and decisions of one command before giving up on an item that keeps changing."""

ALREADY_APPLIED: Verdict = "already applied"
_NOTHING: list[RecordedEvent] = []  # what an unchanged command appended (never mutated)


def decide_and_append(
    batch: JournalBatch,
    command: BatchCommand,
    state: ItemState,
    done: list[RecordedEvent] | None,
    recorded_at: str,
    new_id: Callable[[], str],
) -> tuple[Verdict, ItemState, list[RecordedEvent]]:
    """Carry out `command` on an item in `state`, whose stream the batch has read this
    round; `done`: the events already recorded under the command's idempotency key, if
    it was used.

    Returns (verdict, the item's state after it, events):
    - ALREADY_APPLIED, the state unchanged, and `done`: nothing appended;
    - "unchanged", the state, and no events: the command is already true;
    - its outcome ("created", ...), the new state, and the events it appended.
    Raises the command's typed error (ConflictError, WrongExpectedVersion, NotFoundError).

    Written for `cqrs apply`'s loop, which calls it for every command of files of
    millions: it builds no result object (see `write_result`)."""
    inner = command.command
    item_id = inner.item_id
    if done is not None:
        if done[0].stream_id != item_id:
            raise ConflictError(
                f"idempotency key {command.idempotency_key!r} was already used for another "
                f"item ({done[0].stream_id!r})"
            )
        return ALREADY_APPLIED, state, done
    expected = command.expected_version
    if expected is not None and state.version != expected:
        raise WrongExpectedVersion(item_id, expected, state.version)
    events = decide(inner, state)
    if not events:
        return "unchanged", state, _NOTHING
    metadata = AppendMetadata(
        recorded_at, new_id(), command.idempotency_key, command.correlation_id
    )
    version = state.version
    new_events = []
    for event in events:
        new_events.append(NewEvent(new_id(), *encode(event)))
        state = evolve(state, event)
    recorded = batch.append(item_id, version, new_events, metadata)
    return OUTCOME_BY_EVENT[recorded[0].event_type], state, recorded


def write_result(
    item_id: str,
    verdict: Verdict,
    state: ItemState,
    events: list[RecordedEvent],
    position: int | None,
) -> WriteResult:
    """The WriteResult of a command `decide_and_append` carried out; `position`: the
    journal position the item was at before it (None if it has no events), which is
    where an unchanged item still is."""
    if not events:
        return WriteResult(item_id, "unchanged", state.version, position)
    last = events[-1]
    return WriteResult(
        item_id,
        OUTCOME_BY_EVENT[events[0].event_type],
        last.stream_version,
        last.position,
        tuple(events),
        already_applied=verdict == ALREADY_APPLIED,
    )


class StaleRead(Exception):
    """The item changed between reading its stream and taking the journal's write lock:
    decide again on the new state (not a conflict, whatever the expected version)."""


def write_one(
    batch: JournalBatch,
    command: BatchCommand,
    item: Loaded,
    recorded_at: str,
    new_id: Callable[[], str],
) -> tuple[Verdict, ItemState, list[RecordedEvent], int | None]:
    """A single command, the only one of `batch`: `item` is its item as read before the
    batch began (write/streams.py), or taken to be new; inside the batch its key is
    looked up and the batch told where the item's stream was (StaleRead if it moved
    on: `JournalBatch.go_on_from`), then
    `decide_and_append`, and a new state record saved when one is due. Returns what
    `decide_and_append` returns, and the position the item was at before (for
    `write_result`).

    The item is read outside the transaction so that the write lock is held only for
    the key lookup, a version check, the insert and the commit: holding it while the
    stream was read and folded made writers queue past the busy timeout under load
    (tests/test_sync_concurrency.py)."""
    item_id = command.command.item_id
    key = command.idempotency_key
    # The key before the version: a key lookup starts a new round, and the stream's
    # version must be read in the round of the append.
    done = batch.find_by_idempotency_keys((key,)).get(key) if key is not None else None
    if done is not None:  # applied already: the item's history does not matter
        verdict, state, events = decide_and_append(
            batch, command, INITIAL, done, recorded_at, new_id
        )
        return verdict, state, events, None
    if not batch.go_on_from(item_id, item.state.version, item.head):
        raise StaleRead
    verdict, state, events = decide_and_append(
        batch, command, item.state, None, recorded_at, new_id
    )
    if events:
        record = record_to_save(item_id, item.saved, state, events[-1])
        if record is not None:
            batch.save_state(record)
    return verdict, state, events, item.position
