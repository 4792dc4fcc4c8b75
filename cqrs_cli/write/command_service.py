"""CommandService: the write side. Load the item's stream, fold it, decide, append.

Optimistic concurrency: the stream is read outside any transaction and the append
checks, inside its own, that the stream is still at the version the decision was made
on. If another writer got there first, the command is decided again on the new state
(unless the caller pinned `expected_version`, in which case that is a conflict).
"""

from __future__ import annotations

from ..clock import utc_now
from ..domain.codec import decode, encode
from ..domain.item import (
    Command,
    CreateItem,
    DeleteItem,
    Event,
    ItemState,
    UpdateItem,
    decide,
    fold,
)
from ..domain.validation import InvalidInput, validate_description, validate_item_id
from ..errors import ConflictError, NotFoundError, WrongExpectedVersion
from ..ids import new_uuid
from ..journal.records import AppendMetadata, NewEvent, RecordedEvent
from ..paths import StorePaths
from ..text import printable
from .results import OUTCOME_BY_EVENT, PlannedEvent, WriteResult, already_applied

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable

    from ..journal.base import Journal
    from .ndjson import BatchCommand

MAX_ATTEMPTS = 50
"""Decide-and-append rounds before giving up on an item that keeps changing."""

MAX_KEY_LENGTH = 200


def _check_token(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_KEY_LENGTH or not value.isprintable():
        raise InvalidInput(
            f"invalid {name} '{printable(value)}': use 1 to {MAX_KEY_LENGTH} printable characters"
        )
    return value


def _check_version(expected: int | None) -> int | None:
    if expected is not None and not 0 <= expected < 2**63:
        raise InvalidInput(f"invalid expected version {expected}: it must be 0 or more")
    return expected


class CommandService:
    """Creates, updates and deletes items by appending events to the journal.

    >>> service = CommandService("/tmp/store")          # doctest: +SKIP
    >>> print(service.create_item("Item1"))             # doctest: +SKIP
    Item created: Item1

    `store` is a home folder holding the journal (and projection), a StorePaths, or None
    for the default location. Results are WriteResult; failures are typed CqrsErrors.
    """

    def __init__(
        self,
        store: StorePaths | str | os.PathLike[str] | None = None,
        *,
        journal: Journal | None = None,
        clock: Callable[[], str] = utc_now,
        new_id: Callable[[], str] = new_uuid,
    ) -> None:
        self.paths = StorePaths.coerce(store) if journal is None else None
        self._journal = journal
        self._writable = journal is not None
        self._clock = clock
        self._new_id = new_id

    # The seed's names.

    def create_item(
        self,
        item_id: str,
        description: str = "",
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        return self.execute(
            CreateItem(item_id, description),
            expected_version=expected_version,
            idempotency_key=idempotency_key,
            correlation_id=correlation_id,
            dry_run=dry_run,
        )

    def update_item(
        self,
        item_id: str,
        description: str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        return self.execute(
            UpdateItem(item_id, description),
            expected_version=expected_version,
            idempotency_key=idempotency_key,
            correlation_id=correlation_id,
            dry_run=dry_run,
        )

    def delete_item(
        self,
        item_id: str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        return self.execute(
            DeleteItem(item_id),
            expected_version=expected_version,
            idempotency_key=idempotency_key,
            correlation_id=correlation_id,
            dry_run=dry_run,
        )

    def execute(
        self,
        command: Command,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        """Validate `command`, decide it against the item's history and append its events.

        `expected_version`: fail with a conflict unless the item is at this version
        (0: never written). `idempotency_key`: if a command with this key was applied
        already, append nothing and report it. `dry_run`: decide, but write nothing.
        """
        command = _validated(command)
        expected_version = _check_version(expected_version)
        idempotency_key = _check_token("idempotency key", idempotency_key)
        correlation_id = _check_token("correlation id", correlation_id)
        item_id = command.item_id
        journal = self._open(create=not dry_run)

        if idempotency_key is not None and journal is not None:
            done = journal.find_by_idempotency_key(idempotency_key)
            if done:
                return already_applied(item_id, idempotency_key, done)

        for _ in range(MAX_ATTEMPTS):
            history = journal.read_stream(item_id) if journal is not None else []
            state = fold(_decoded(history))
            try:
                if expected_version is not None and state.version != expected_version:
                    raise WrongExpectedVersion(item_id, expected_version, state.version)
                events = decide(command, state)
            except (ConflictError, NotFoundError):
                # A retry racing its own first attempt: the state now reflects that
                # attempt, so the command looks wrong; the key says it was applied.
                if idempotency_key is not None and journal is not None:
                    done = journal.find_by_idempotency_key(idempotency_key)
                    if done:
                        return already_applied(item_id, idempotency_key, done)
                raise
            last_position = history[-1].position if history else None
            if not events:
                return WriteResult(item_id, "unchanged", state.version, last_position)
            if dry_run:
                return _planned(item_id, state, events, last_position)
            assert journal is not None
            metadata = AppendMetadata(
                self._clock(), self._new_id(), idempotency_key, correlation_id
            )
            new_events = [NewEvent(self._new_id(), *encode(event)) for event in events]
            try:
                result = journal.append(item_id, state.version, new_events, metadata)
            except WrongExpectedVersion:
                if expected_version is not None:
                    raise
                continue  # another writer changed the item meanwhile: decide again
            if result.already_applied:
                assert idempotency_key is not None
                return already_applied(item_id, idempotency_key, result.events)
            appended = result.events
            return WriteResult(
                item_id,
                OUTCOME_BY_EVENT[appended[0].event_type],
                appended[-1].stream_version,
                appended[-1].position,
                tuple(appended),
            )
        raise ConflictError(
            f"item {item_id!r} kept changing under concurrent writers "
            f"({MAX_ATTEMPTS} attempts); retry"
        )

    def apply(
        self,
        commands: Iterable[BatchCommand],
        *,
        on_result: Callable[[int, WriteResult], None] | None = None,
    ) -> BatchSummary:
        """Apply a batch in one transaction: all of it, or (on the first command that
        fails, raised as BatchLineError naming its line) none of it. `on_result` sees
        each command's result as it is decided, before the commit."""
        from .batch import apply_round, rounds

        summary = BatchSummary()
        journal = self._open(create=True)
        assert journal is not None
        with journal.batch() as batch:
            for chunk in rounds(commands):
                apply_round(
                    batch,
                    chunk,
                    summary,
                    recorded_at=self._clock(),
                    new_id=self._new_id,
                    validate=_validated_line,
                    on_result=on_result,
                )
        return summary

    def _open(self, *, create: bool) -> Journal | None:
        """The journal; for a dry run (`create` unset) a read-only one, or None when
        there is none yet: a dry run creates nothing."""
        if self._journal is not None and (self._writable or not create):
            return self._journal
        from ..journal.locator import find_journal, open_journal

        assert self.paths is not None
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if create:
            self._journal = open_journal(self.paths.journal)
        else:
            self._journal = find_journal(self.paths.journal)
        self._writable = create
        return self._journal

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self) -> CommandService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
            self.commands += 1
            self.already_applied += 1
        elif result.outcome == "unchanged":
            self.count("unchanged")
        else:
            first = result.events[0].position  # type: ignore[union-attr]
            self.count(result.outcome, first, result.position)

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


def _validated_line(line: BatchCommand) -> BatchCommand:
    command = _validated(line.command)
    # Tested here, not in the checks: most lines have none of them (once per line).
    if line.expected_version is not None:
        _check_version(line.expected_version)
    if line.idempotency_key is not None:
        _check_token("idempotency key", line.idempotency_key)
    if line.correlation_id is not None:
        _check_token("correlation id", line.correlation_id)
    if command is line.command:
        return line
    from .ndjson import BatchCommand

    return BatchCommand(
        line.line, command, line.expected_version, line.idempotency_key, line.correlation_id
    )


def _validated(command: Command) -> Command:
    """`command` checked, with its id in the stored form (the same object when the id
    needed no normalising)."""
    item_id = validate_item_id(command.item_id)
    if not isinstance(command, DeleteItem):
        validate_description(command.description)
    if item_id == command.item_id:
        return command
    if isinstance(command, CreateItem):
        return CreateItem(item_id, command.description)
    if isinstance(command, UpdateItem):
        return UpdateItem(item_id, command.description)
    return DeleteItem(item_id)


def _decoded(history: list[RecordedEvent]) -> list[Event]:
    return [decode(e.stream_id, e.event_type, e.schema_version, e.data) for e in history]


def _planned(
    item_id: str, state: ItemState, events: list[Event], last_position: int | None
) -> WriteResult:
    planned = tuple(
        PlannedEvent(item_id, state.version + n, *encode(event))
        for n, event in enumerate(events, start=1)
    )
    outcome = OUTCOME_BY_EVENT[planned[0].event_type]
    return WriteResult(
        item_id, outcome, planned[-1].stream_version, last_position, planned, dry_run=True
    )
