"""Applying many commands in one transaction: the engine of `cqrs apply`.

The same decider and rules as single commands, in rounds of ROUND commands: the round's
idempotency keys and streams are read with one query each (inside the transaction, so
they see the earlier rounds' appends), every command is decided in memory against its
item's state, and the round's events are buffered by the journal batch, which inserts
them with one statement at the next round's read (or the commit). Memory is bounded by
a round, whatever the size of the batch.
"""

from __future__ import annotations

from ..domain.codec import decode, encode
from ..domain.item import INITIAL, ItemState, decide, evolve, fold
from ..errors import CqrsError, WrongExpectedVersion
from ..journal.records import AppendMetadata, NewEvent
from .results import OUTCOME_BY_EVENT, WriteResult, already_applied

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ..journal.base import JournalBatch
    from .command_service import BatchSummary
    from .ndjson import BatchCommand

ROUND = 1000


class BatchLineError(CqrsError):
    """A command of a batch failed: the whole batch is rolled back. Carries the line
    and the exit code of the underlying error."""

    def __init__(self, line: int, cause: CqrsError) -> None:
        super().__init__(f"line {line}: {cause}")
        self.line = line
        self.cause = cause
        self.exit_code = cause.exit_code


def rounds(commands: Iterable[BatchCommand], size: int = ROUND) -> Iterator[list[BatchCommand]]:
    chunk: list[BatchCommand] = []
    for command in commands:
        chunk.append(command)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def apply_round(
    batch: JournalBatch,
    commands: list[BatchCommand],
    summary: BatchSummary,
    *,
    recorded_at: str,
    new_id: Callable[[], str],
    validate: Callable[[BatchCommand], BatchCommand],
    on_result: Callable[[int, WriteResult], None] | None = None,
) -> None:
    """Decide and append one round, counting each command's outcome in `summary` and
    passing its result to `on_result` (results are only built for a caller that wants
    them). BatchLineError (after which the caller must roll back) on the first command
    that fails."""
    checked: list[BatchCommand] = []
    for command in commands:
        try:
            checked.append(validate(command))
        except CqrsError as exc:
            raise BatchLineError(command.line, exc) from None
    keys = [c.idempotency_key for c in checked if c.idempotency_key is not None]
    done = batch.find_by_idempotency_keys(keys) if keys else {}
    histories = batch.read_streams([c.command.item_id for c in checked])
    states: dict[str, ItemState] = {}
    # For `unchanged` results: the position the item is at.
    last_positions: dict[str, int] = {}
    for item_id, history in histories.items():
        states[item_id] = fold(
            decode(e.stream_id, e.event_type, e.schema_version, e.data) for e in history
        )
        last_positions[item_id] = history[-1].position
    for command in checked:
        item_id = command.command.item_id
        key = command.idempotency_key
        try:
            if key is not None and key in done:
                result = already_applied(item_id, key, done[key])
                summary.add(result)
                if on_result is not None:
                    on_result(command.line, result)
                continue
            state = states.get(item_id, INITIAL)
            expected = command.expected_version
            if expected is not None and state.version != expected:
                raise WrongExpectedVersion(item_id, expected, state.version)
            events = decide(command.command, state)
        except CqrsError as exc:
            raise BatchLineError(command.line, exc) from None
        if not events:
            summary.count("unchanged")
            if on_result is not None:
                position = last_positions.get(item_id)
                on_result(command.line, WriteResult(item_id, "unchanged", state.version, position))
            continue
        metadata = AppendMetadata(recorded_at, new_id(), key, command.correlation_id)
        version = state.version
        new_events = []
        for event in events:
            new_events.append(NewEvent(new_id(), *encode(event)))
            state = evolve(state, event)
        recorded = batch.append(item_id, version, new_events, metadata)
        states[item_id] = state
        last = recorded[-1]
        last_positions[item_id] = last.position
        if key is not None:
            done[key] = recorded
        outcome = OUTCOME_BY_EVENT[recorded[0].event_type]
        summary.count(outcome, recorded[0].position, last.position)
        if on_result is not None:
            on_result(
                command.line,
                WriteResult(item_id, outcome, last.stream_version, last.position, tuple(recorded)),
            )
