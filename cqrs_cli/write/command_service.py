"""CommandService: the write side. Create, update and delete items; apply batches.

Every command goes through write/pipeline.py. A single command is a batch of one
(`Journal.batch()`): its idempotency key is looked up, its item's stream read and
folded, the command decided and its events appended, all in one transaction, so that
nothing can change the item between the decision and the append. A backend whose
transactions only find out at commit that another writer got there first (a server
database) raises WrongExpectedVersion then: the command is decided again on the new
state, unless the caller pinned `expected_version`, which makes that a conflict.
Batches (`apply`) are write/batch.py's; dry runs write/dry_run.py's.
"""

from __future__ import annotations

from ..clock import utc_now
from ..domain.item import CreateItem, DeleteItem, UpdateItem
from ..errors import ConflictError, WrongExpectedVersion
from ..ids import new_uuid
from ..paths import StorePaths
from .checks import check_token, check_version, validated
from .pipeline import MAX_ATTEMPTS, BatchCommand, StaleRead, write_one, write_result
from .streams import NEW, load

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypedDict, Unpack

    class WriteOptions(TypedDict, total=False):
        """The keyword options of every write (see CommandService.execute)."""

        expected_version: int | None
        idempotency_key: str | None
        correlation_id: str | None
        dry_run: bool

    import os
    from collections.abc import Callable, Iterable

    from ..domain.item import Command
    from ..journal.base import Journal, JournalBatch
    from .batch import BatchSummary
    from .results import WriteResult


class CommandService:
    """Creates, updates and deletes items by appending events to the journal.

    >>> service = CommandService("/tmp/store")          # doctest: +SKIP
    >>> print(service.create_item("Item1"))             # doctest: +SKIP
    Item created: Item1

    `store` is a home folder holding the journal (and projection), a StorePaths, or None
    for the default location. Results are WriteResult; failures are typed CqrsErrors.

    `catch_up`: after each write, catch the projection up in a background thread
    (sync/session.py), and let this process's QueryServices wait for it (read-your-
    writes). False, or CQRS_CATCHUP=0 in the environment, turns it off; a journal object
    given as `journal` has no projection to catch up.
    """

    def __init__(
        self,
        store: StorePaths | str | os.PathLike[str] | None = None,
        *,
        journal: Journal | None = None,
        clock: Callable[[], str] = utc_now,
        new_id: Callable[[], str] = new_uuid,
        catch_up: bool = True,
    ) -> None:
        self.paths = StorePaths.coerce(store) if journal is None else None
        self._catch_up = catch_up and self.paths is not None and _catch_up_enabled()
        self._journal = journal
        self._writable = journal is not None
        self._clock = clock
        self._new_id = new_id

    # The seed's names. Their keyword options are execute's (WriteOptions).

    def create_item(
        self, item_id: str, description: str = "", **options: Unpack[WriteOptions]
    ) -> WriteResult:
        return self.execute(CreateItem(item_id, description), **options)

    def update_item(
        self, item_id: str, description: str, **options: Unpack[WriteOptions]
    ) -> WriteResult:
        return self.execute(UpdateItem(item_id, description), **options)

    def delete_item(self, item_id: str, **options: Unpack[WriteOptions]) -> WriteResult:
        return self.execute(DeleteItem(item_id), **options)

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
        line = BatchCommand(
            0,
            validated(command),
            check_version(expected_version),
            check_token("idempotency key", idempotency_key),
            check_token("correlation id", correlation_id),
        )
        if dry_run:
            from .dry_run import plan

            return plan(self._open(create=False), line, self._clock(), self._new_id)
        if self._journal is None and not self._journal_exists():
            # Nothing written yet: a command refused against the empty journal must not
            # leave an empty journal file behind, so decide it before creating one.
            from .dry_run import plan

            plan(None, line, self._clock(), self._new_id)
        journal = self._open(create=True)
        assert journal is not None
        item_id = line.command.item_id
        # A create is first tried on the item as new, without reading it: the batch
        # finds out if it is not (StaleRead, or WrongExpectedVersion at a server's
        # commit), and the command is decided again on the item as read. Most creates
        # are of new items, and on a server the read is a round trip.
        guess = isinstance(line.command, CreateItem)
        for _ in range(MAX_ATTEMPTS):
            item = NEW if guess else load(journal, item_id)
            decided = False
            try:
                with journal.batch(single=True) as batch:
                    verdict, state, events, position = write_one(
                        batch, line, item, self._clock(), self._new_id
                    )
                    decided = True
            except StaleRead:
                guess = False
                continue  # another writer got there between the read and the lock
            except WrongExpectedVersion:
                if not decided and not guess:
                    raise  # the decision's own: the item is not at the pinned version
                # The commit's (a server journal): another writer committed the same
                # version or key first. Read the item and its key again and decide
                # again: a pinned version is checked against what is read then, and a
                # retry that raced its own first attempt is found "already applied".
                guess = False
                continue
            result = write_result(line.command.item_id, verdict, state, events, position)
            if result.position is not None:
                self._caught_up_after(result.position)
            return result
        raise ConflictError(
            f"item {line.command.item_id!r} kept changing under concurrent writers "
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
        from .batch import apply_batch

        if self._journal is None and not self._journal_exists():
            return self._apply_to_a_new_journal(commands, on_result)
        journal = self._open(create=True)
        assert journal is not None
        summary = apply_batch(
            journal, commands, clock=self._clock, new_id=self._new_id, on_result=on_result
        )
        if summary.last_position is not None:
            self._caught_up_after(summary.last_position)
        return summary

    def _caught_up_after(self, position: int) -> None:
        """The write reached `position` (committed): start the catch-up after writes."""
        if self._catch_up:
            from ..sync.session import after_write

            assert self.paths is not None
            try:
                after_write(self.paths, position)
            except Exception:  # no thread to be had, say: the write stands as it is
                return

    def _apply_to_a_new_journal(
        self,
        commands: Iterable[BatchCommand],
        on_result: Callable[[int, WriteResult], None] | None,
    ) -> BatchSummary:
        """A batch on a store with no journal yet builds the journal with it, all or
        nothing (journal.locator.create_journal): a batch that fails, or has nothing to
        apply, leaves no journal file behind."""
        from ..errors import BusyError, UsageError
        from ..journal.locator import create_journal, redacted
        from .batch import BatchSummary, apply_rounds

        assert self.paths is not None
        locator = self.paths.journal
        summary = BatchSummary()

        def fill(batch: JournalBatch) -> int:
            clock, new_id = self._clock, self._new_id
            apply_rounds(batch, commands, summary, clock=clock, new_id=new_id, on_result=on_result)
            if not summary.commands:
                raise _NothingToApply
            return summary.appended

        try:
            create_journal(locator, new_uuid(), fill)
        except _NothingToApply:
            pass
        except UsageError:
            if not self._journal_exists():
                raise  # a bad line: nothing was created
            # Another process created the journal while this batch was being built.
            raise BusyError(
                f"{redacted(locator)}: another process created the journal meanwhile; "
                "nothing was written, retry"
            ) from None
        if summary.last_position is not None:
            self._caught_up_after(summary.last_position)
        return summary

    def _journal_exists(self) -> bool:
        from ..journal.locator import journal_exists

        assert self.paths is not None
        return journal_exists(self.paths.journal)

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


class _NothingToApply(Exception):
    """An empty batch on a store with no journal: create none for it."""


def _catch_up_enabled() -> bool:
    from ..sync.catchup_lock import enabled

    return enabled()
