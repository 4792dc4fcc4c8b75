"""CommandService, the write side as a Python library: results, conflicts, idempotency,
dry runs and typed errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from cqrs_cli.domain.codec import decode
from cqrs_cli.domain.validation import InvalidInput
from cqrs_cli.errors import (
    ConflictError,
    NotFoundError,
    StorageError,
    UsageError,
    WrongExpectedVersion,
)
from cqrs_cli.journal.records import AppendMetadata, NewEvent, RecordedEvent, StateRecord
from cqrs_cli.journal.sqlite_journal import JournalBatch, SqliteJournal
from cqrs_cli.paths import StorePaths
from cqrs_cli.write.command_service import CommandService
from cqrs_cli.write.results import PlannedEvent, WriteResult


@pytest.fixture
def service(store: Path) -> CommandService:
    return CommandService(store)


def journal_events(store: Path) -> list[RecordedEvent]:
    journal = SqliteJournal.open(str(store / "journal.db"), create=False)
    try:
        return journal.read_all(limit=10_000)
    finally:
        journal.close()


def stored_description(store: Path, item_id: str) -> str:
    last = [e for e in journal_events(store) if e.stream_id == item_id][-1]
    event = decode(last.stream_id, last.event_type, last.schema_version, last.data)
    return getattr(event, "description", "")


def test_the_public_names_import_from_the_package() -> None:
    import cqrs_cli
    from cqrs_cli import CommandService as Public
    from cqrs_cli import ConflictError as PublicConflict
    from cqrs_cli import WriteResult as PublicResult

    assert Public is CommandService
    assert PublicResult is WriteResult
    assert PublicConflict is ConflictError
    with pytest.raises(AttributeError):
        _ = cqrs_cli.NoSuchName


# --- Results -----------------------------------------------------------------------------


def test_create_update_delete_report_outcome_version_and_position(
    service: CommandService,
) -> None:
    created = service.create_item("Item1")
    assert (created.outcome, created.version, created.position) == ("created", 1, 1)
    assert str(created) == "Item created: Item1"
    assert not created.already_applied and not created.dry_run
    assert [e.event_type for e in created.events] == ["ItemCreated"]

    updated = service.update_item("Item1", "Updated Description")
    assert (updated.outcome, updated.version, updated.position) == ("updated", 2, 2)
    assert str(updated) == "Item updated: Item1"

    deleted = service.delete_item("Item1")
    assert (deleted.outcome, deleted.version, deleted.position) == ("deleted", 3, 3)
    assert str(deleted) == "Item deleted: Item1"

    again = service.create_item("Item1", "second life")
    assert (again.outcome, again.version, again.position) == ("created", 4, 4)


def test_positions_are_global_and_versions_per_item(service: CommandService) -> None:
    service.create_item("A")
    b = service.create_item("B")
    a = service.update_item("A", "x")
    assert (b.version, b.position) == (1, 2)
    assert (a.version, a.position) == (2, 3)


def test_an_update_to_the_same_description_is_unchanged_and_appends_nothing(
    service: CommandService, store: Path
) -> None:
    service.create_item("Item1", "same")
    result = service.update_item("Item1", "same")
    assert (result.outcome, result.version, result.position) == ("unchanged", 1, 1)
    assert result.events == ()
    assert str(result) == "Item unchanged: Item1"
    assert len(journal_events(store)) == 1


def test_descriptions_are_stored_byte_exact(service: CommandService, store: Path) -> None:
    text = "line one\nline two\r\n\ttab \x1b[31mred\x1b[0m \u202e bidi [/] \\ é 🎉\n"
    service.create_item("Item1", text)
    assert stored_description(store, "Item1") == text


def test_an_nfd_and_an_nfc_spelling_name_the_same_item(service: CommandService) -> None:
    created = service.create_item("Cafe\u0301", "a")
    assert created.item_id == "Caf\u00e9"
    assert service.update_item("Caf\u00e9", "b").version == 2


def test_the_metadata_holds_the_correlation_id_and_idempotency_key(
    service: CommandService, store: Path
) -> None:
    service.create_item("Item1", idempotency_key="key-1", correlation_id="batch-7")
    (event,) = journal_events(store)
    assert (event.idempotency_key, event.correlation_id) == ("key-1", "batch-7")


@pytest.mark.parametrize(
    "make_store",
    [
        lambda home: home,
        lambda home: str(home),
        lambda home: StorePaths(str(home / "journal.db"), str(home / "projection.db")),
        lambda home: None,
    ],
    ids=["path", "str", "StorePaths", "None-means-CQRS_HOME"],
)
def test_the_store_may_be_given_in_several_forms(
    store: Path, make_store: Callable[[Path], StorePaths | str | Path | None]
) -> None:
    with CommandService(make_store(store)) as service:
        service.create_item("Item1")
    assert (store / "journal.db").is_file()


# --- Expected versions ---------------------------------------------------------------------


def test_an_expected_version_that_matches_lets_the_write_through(service: CommandService) -> None:
    service.create_item("Item1", expected_version=0)
    assert service.update_item("Item1", "b", expected_version=1).version == 2


def test_an_expected_version_that_does_not_match_is_a_conflict(
    service: CommandService, store: Path
) -> None:
    service.create_item("Item1")
    with pytest.raises(WrongExpectedVersion) as caught:
        service.update_item("Item1", "b", expected_version=5)
    assert isinstance(caught.value, ConflictError)
    assert caught.value.exit_code == 4
    assert str(caught.value) == "item 'Item1' is at version 1, not the expected version 5"
    assert len(journal_events(store)) == 1


def test_a_negative_expected_version_is_invalid(service: CommandService) -> None:
    with pytest.raises(InvalidInput, match="expected version"):
        service.create_item("Item1", expected_version=-1)


# --- Idempotency ---------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_is_already_applied(
    service: CommandService, store: Path
) -> None:
    first = service.create_item("Item1", "a", idempotency_key="k")
    retry = service.create_item("Item1", "a", idempotency_key="k")
    assert retry.already_applied
    assert (retry.outcome, retry.version, retry.position) == ("created", 1, 1)
    assert retry.events == first.events
    assert retry.to_json()["appended"] == 0
    assert len(journal_events(store)) == 1
    # A retry from a fresh process (a new service) sees the same.
    assert CommandService(store).create_item("Item1", "a", idempotency_key="k").already_applied


def test_an_idempotency_key_reused_for_another_item_is_a_conflict(
    service: CommandService, store: Path
) -> None:
    service.create_item("Item1", idempotency_key="k")
    with pytest.raises(ConflictError, match="already used for another item"):
        service.create_item("Item2", idempotency_key="k")
    assert len(journal_events(store)) == 1


@pytest.mark.parametrize("key", ["", "x" * 201, "tab\there", "esc\x1b[2J"], ids=repr)
def test_an_unusable_idempotency_key_is_invalid(service: CommandService, key: str) -> None:
    with pytest.raises(InvalidInput, match="idempotency key"):
        service.create_item("Item1", idempotency_key=key)


# --- Dry runs ------------------------------------------------------------------------------


def test_a_dry_run_on_a_new_store_creates_no_journal(service: CommandService, store: Path) -> None:
    result = service.create_item("Item1", "a", dry_run=True)
    assert (result.outcome, result.version, result.position) == ("created", 1, None)
    assert result.dry_run and not result.already_applied
    assert result.events == (PlannedEvent("Item1", 1, "ItemCreated", 1, '{"description":"a"}'),)
    assert str(result) == "Item created: Item1"
    assert not (store / "journal.db").exists()


def test_a_dry_run_decides_against_the_history_and_writes_nothing(
    service: CommandService, store: Path
) -> None:
    service.create_item("Item1", "a")
    before = journal_events(store)
    result = service.update_item("Item1", "b", dry_run=True)
    assert (result.outcome, result.version, result.position) == ("updated", 2, 1)
    assert result.to_json()["appended"] == 0
    assert service.delete_item("Item1", dry_run=True).outcome == "deleted"
    with pytest.raises(ConflictError):
        service.create_item("Item1", dry_run=True)
    with pytest.raises(NotFoundError):
        service.update_item("Nope", "b", dry_run=True)
    assert journal_events(store) == before


# --- Typed errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("act", "error", "exit_code"),
    [
        (lambda s: s.create_item("Live"), ConflictError, 4),
        (lambda s: s.update_item("Unknown", "x"), NotFoundError, 3),
        (lambda s: s.delete_item("Gone"), NotFoundError, 3),
        (lambda s: s.create_item(""), UsageError, 2),
        (lambda s: s.create_item("bad\x1bid"), UsageError, 2),
        (lambda s: s.create_item("ok", "nul\x00"), UsageError, 2),
    ],
    ids=["exists", "unknown", "deleted", "empty-id", "control-id", "nul-description"],
)
def test_failures_are_typed_errors_with_their_exit_code(
    service: CommandService,
    store: Path,
    act: Callable[[CommandService], object],
    error: type[Exception],
    exit_code: int,
) -> None:
    service.create_item("Live")
    service.create_item("Gone")
    service.delete_item("Gone")
    with pytest.raises(error) as caught:
        act(service)
    assert getattr(caught.value, "exit_code", None) == exit_code
    assert len(journal_events(store)) == 3


def test_a_journal_path_holding_another_file_is_a_storage_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    paths = StorePaths(str(text), str(tmp_path / "projection.db"))
    with pytest.raises(StorageError) as caught:
        CommandService(paths).create_item("Item1")
    assert caught.value.exit_code == 7
    assert text.read_text() == "hello\n"


# --- Concurrent writers, made deterministic with a journal that lets one in ----------------


class InterleavingJournal(SqliteJournal):
    """A journal that lets another writer in, at one `moment` of a command's transaction:

    - "batch": just before it starts, after the command read its stream: the command
      finds the stream moved on when it checks the version under the write lock, and
      reads and decides again on the state the other writer left;
    - "commit": as it commits, the way a backend whose transactions find out only at
      commit that they lost a race (a server database) would: the command's transaction
      is rolled back, the other writer's commits, and the command's commit raises
      WrongExpectedVersion. SQLite's own batch holds the write lock from its start, so
      only this stand-in makes CommandService's retry loop run.

    `times` other writers get in, one per transaction, at that moment."""

    moment = ""
    intrude: Callable[[], object] | None = None
    times = 1
    transactions = 0

    def _intruder(self, moment: str) -> Callable[[], object] | None:
        if moment != self.moment or self.intrude is None or self.times <= 0:
            return None
        self.times -= 1
        return self.intrude

    def batch(self, *, single: bool = False) -> RacingBatch:  # type: ignore[override]
        self.transactions += 1
        first = self._intruder("batch")
        if first is not None:
            first()
        return RacingBatch(self, super().batch(), self._intruder("commit"))


class RacingBatch:
    """SqliteJournal's batch, losing its commit to `winner` when there is one."""

    def __init__(
        self,
        journal: SqliteJournal,
        inner: JournalBatch,
        winner: Callable[[], object] | None,
    ) -> None:
        self._journal = journal
        self._inner = inner
        self._winner = winner
        self._appended: list[tuple[str, int]] = []

    def __enter__(self) -> RacingBatch:
        self._inner.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        if exc_type is not None or self._winner is None or not self._appended:
            self._inner.__exit__(exc_type, exc, tb)
            return
        self._inner.__exit__(WrongExpectedVersion, None, None)  # rolled back
        self._winner()
        stream_id, expected = self._appended[0]
        actual = len(self._journal.read_stream(stream_id))
        raise WrongExpectedVersion(stream_id, expected, actual)

    def stream_version(self, stream_id: str) -> int:
        return self._inner.stream_version(stream_id)

    def go_on_from(self, stream_id: str, version: int, head: str) -> bool:
        return self._inner.go_on_from(stream_id, version, head)

    def read_streams(
        self, stream_ids: Sequence[str], from_versions: Mapping[str, int] | None = None
    ) -> dict[str, list[RecordedEvent]]:
        return self._inner.read_streams(stream_ids, from_versions)

    def read_states(self, stream_ids: Sequence[str]) -> dict[str, StateRecord]:
        return self._inner.read_states(stream_ids)

    def save_state(self, record: StateRecord) -> None:
        self._inner.save_state(record)

    def find_by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        return self._inner.find_by_idempotency_keys(keys)

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: AppendMetadata,
    ) -> list[RecordedEvent]:
        self._appended.append((stream_id, expected_version))
        return self._inner.append(stream_id, expected_version, events, metadata)

    def restore(self, event: RecordedEvent) -> None:
        self._inner.restore(event)


def interleaved_service(
    store: Path, moment: str, intrude: Callable[[], object], times: int = 1
) -> tuple[CommandService, InterleavingJournal]:
    journal = InterleavingJournal.open(str(store / "journal.db"))
    assert isinstance(journal, InterleavingJournal)
    journal.moment, journal.intrude, journal.times = moment, intrude, times
    return CommandService(journal=journal), journal


MOMENTS = ["batch", "commit"]


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_write_that_lost_a_race_is_decided_again_on_the_new_state(
    store: Path, moment: str
) -> None:
    other = CommandService(store)
    other.create_item("Item1", "a")
    service, journal = interleaved_service(store, moment, lambda: other.update_item("Item1", "b"))
    result = service.update_item("Item1", "c")
    assert (result.outcome, result.version) == ("updated", 3)
    assert stored_description(store, "Item1") == "c"
    assert journal.transactions == 2


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_lost_race_is_a_conflict_when_the_version_was_pinned(store: Path, moment: str) -> None:
    other = CommandService(store)
    other.create_item("Item1", "a")
    service, journal = interleaved_service(store, moment, lambda: other.update_item("Item1", "b"))
    with pytest.raises(WrongExpectedVersion, match="at version 2, not the expected version 1"):
        service.update_item("Item1", "c", expected_version=1)
    assert [e.stream_version for e in journal_events(store)] == [1, 2]
    # Pinned: a lost commit or a stale read is read again, and then the version no
    # longer matches (a retry that raced its own first attempt is found by its key).
    assert journal.transactions == 2


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_create_that_lost_a_race_to_a_create_is_a_conflict(store: Path, moment: str) -> None:
    other = CommandService(store)
    SqliteJournal.open(str(store / "journal.db")).close()
    service, _ = interleaved_service(store, moment, lambda: other.create_item("Item1", "theirs"))
    with pytest.raises(ConflictError, match="already exists"):
        service.create_item("Item1", "mine")
    assert stored_description(store, "Item1") == "theirs"


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_concurrent_retry_with_the_same_idempotency_key_is_already_applied(
    store: Path, moment: str
) -> None:
    SqliteJournal.open(str(store / "journal.db")).close()
    first_attempt = CommandService(store)
    retry, _ = interleaved_service(
        store, moment, lambda: first_attempt.create_item("Item1", "a", idempotency_key="k")
    )
    result = retry.create_item("Item1", "a", idempotency_key="k")
    assert result.already_applied
    assert len(journal_events(store)) == 1


def test_an_item_that_keeps_changing_is_given_up_on(store: Path) -> None:
    from cqrs_cli.write.command_service import MAX_ATTEMPTS

    other = CommandService(store)
    other.create_item("Item1", "a")
    service, journal = interleaved_service(
        store, "commit", lambda: other.update_item("Item1", f"b{journal.transactions}"), 10**6
    )
    with pytest.raises(ConflictError, match="kept changing under concurrent writers"):
        service.update_item("Item1", "mine")
    assert journal.transactions == MAX_ATTEMPTS
    assert stored_description(store, "Item1") != "mine"
    assert len(journal_events(store)) == 1 + MAX_ATTEMPTS


def test_closing_twice_is_harmless(store: Path) -> None:
    service = CommandService(store)
    service.create_item("Item1")
    service.close()
    service.close()
    assert os.path.exists(store / "journal.db")
