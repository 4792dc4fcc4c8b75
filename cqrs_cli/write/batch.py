"""Applying many commands in one transaction: the engine of `cqrs apply`.

The same pipeline as single commands (pipeline.decide_and_append), in rounds of ROUND
commands: the round's idempotency keys and streams are read with one query each (inside
the transaction, so they see the earlier rounds' appends), every command is decided in
memory against its item's state, and the round's events are buffered by the journal
batch, which inserts them with one statement at the next round's read (or the commit).
Memory is bounded by a round, whatever the size of the batch.
"""

from __future__ import annotations

from ..domain.item import INITIAL, ItemState
from ..errors import CqrsError
from .checks import validated_line
from .pipeline import ALREADY_APPLIED, decide_and_append, write_result
from .streams import load_round, record_to_save

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from ..journal.base import Journal, JournalBatch
    from ..journal.records import RecordedEvent
    from .pipeline import BatchCommand
    from .results import WriteResult

ROUND = 1000


class BatchLineError(CqrsError):
    """A command of a batch failed: the whole batch is rolled back. Carries the line
    and the exit code of the underlying error."""

    def __init__(self, line: int, cause: CqrsError) -> None:
        super().__init__(f"line {line}: {cause}")
        self.line = line
        self.cause = cause
        self.exit_code = cause.exit_code


class BatchSummary:
    """Counts of what a batch did."""

    __slots__ = ("already_applied", "commands", "first_position", "last_position", "outcomes")

    def __init__(self) -> None:
        self.commands = 0
        self.already_applied = 0
        self.outcomes: dict[str, int] = {}
        self.first_position: int | None = None
        self.last_position: int | None = None

    def add(self, result: WriteResult) -> None:
        if result.already_applied:
            self.count_already_applied()
        elif result.outcome == "unchanged":
            self.count("unchanged")
        else:
            first = result.events[0].position  # type: ignore[union-attr]
            self.count(result.outcome, first, result.position)

    def count_already_applied(self) -> None:
        """One more command whose idempotency key was used before."""
        self.commands += 1
        self.already_applied += 1

    def count(
        self, outcome: str, first_position: int | None = None, last_position: int | None = None
    ) -> None:
        """One more command, which ended in `outcome` and appended the events at
        `first_position` ... `last_position` (None: it appended none)."""
        self.commands += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if last_position is not None:
            if self.first_position is None:
                self.first_position = first_position
            self.last_position = last_position

    @property
    def appended(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome != "unchanged")

    def __str__(self) -> str:
        parts = [f"{n} {outcome}" for outcome, n in sorted(self.outcomes.items())]
        if self.already_applied:
            parts.append(f"{self.already_applied} already applied")
        where = ""
        if self.last_position is not None:
            where = f" (journal position {self.first_position} -> {self.last_position})"
        noun = "command" if self.commands == 1 else "commands"
        done = ", ".join(parts) or "nothing to do"
        return f"Applied {self.commands} {noun}: {done}{where}"

    def to_json(self) -> dict[str, object]:
        return {
            "commands": self.commands,
            "appended": self.appended,
            "already_applied": self.already_applied,
            "outcomes": dict(sorted(self.outcomes.items())),
            "first_position": self.first_position,
            "last_position": self.last_position,
        }


def apply_batch(
    journal: Journal,
    commands: Iterable[BatchCommand],
    *,
    clock: Callable[[], str],
    new_id: Callable[[], str],
    on_result: Callable[[int, WriteResult], None] | None = None,
) -> BatchSummary:
    """Apply `commands` to `journal` in one transaction, round by round: all of them,
    or (BatchLineError on the first that fails) none. `on_result` sees each command's
    result as it is decided, before the commit."""
    summary = BatchSummary()
    with journal.batch() as batch:
        apply_rounds(batch, commands, summary, clock=clock, new_id=new_id, on_result=on_result)
    return summary


def apply_rounds(
    batch: JournalBatch,
    commands: Iterable[BatchCommand],
    summary: BatchSummary,
    *,
    clock: Callable[[], str],
    new_id: Callable[[], str],
    on_result: Callable[[int, WriteResult], None] | None = None,
) -> None:
    """Every round of `commands` through `batch` (see apply_batch)."""
    for chunk in rounds(commands):
        apply_round(batch, chunk, summary, recorded_at=clock(), new_id=new_id, on_result=on_result)


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
    on_result: Callable[[int, WriteResult], None] | None = None,
) -> None:
    """Decide and append one round, counting each command's outcome in `summary` and
    passing its result to `on_result` (results are only built for a caller that wants
    them). BatchLineError (after which the caller must roll back) on the first command
    that fails."""
    checked: list[BatchCommand] = []
    for command in commands:
        try:
            checked.append(validated_line(command))
        except CqrsError as exc:
            raise BatchLineError(command.line, exc) from None
    keys = [c.idempotency_key for c in checked if c.idempotency_key is not None]
    done = batch.find_by_idempotency_keys(keys) if keys else {}
    items = load_round(batch, [c.command.item_id for c in checked])
    states: dict[str, ItemState] = {s: item.state for s, item in items.items()}
    # For `unchanged` results: the position the item is at.
    last_positions: dict[str, int | None] = {s: item.position for s, item in items.items()}
    # The last event each item appended this round: its hash goes in a state record.
    appended: dict[str, RecordedEvent] = {}
    # Locals, not attribute or global look-ups: this loop runs once per command of
    # files of millions.
    count = summary.count
    get_state = states.get
    for command in checked:
        item_id = command.command.item_id
        key = command.idempotency_key
        try:
            verdict, state, events = decide_and_append(
                batch,
                command,
                get_state(item_id, INITIAL),
                done.get(key) if key is not None else None,
                recorded_at,
                new_id,
            )
        except CqrsError as exc:
            raise BatchLineError(command.line, exc) from None
        if on_result is not None:
            position = last_positions.get(item_id)
            on_result(command.line, write_result(item_id, verdict, state, events, position))
        if verdict == ALREADY_APPLIED:
            summary.count_already_applied()
        elif not events:
            count("unchanged")
        else:
            states[item_id] = state
            last_event = events[-1]
            last = last_event.position
            last_positions[item_id] = last
            appended[item_id] = last_event
            if key is not None:
                done[key] = events
            count(verdict, events[0].position, last)
    for item_id, last_event in appended.items():
        saved = items[item_id].saved if item_id in items else 0
        record = record_to_save(item_id, saved, states[item_id], last_event)
        if record is not None:
            batch.save_state(record)
