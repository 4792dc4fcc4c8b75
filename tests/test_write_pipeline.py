"""One pipeline per command: a command gives the same outcome, the same error and the same
journal content whether it comes alone (`CommandService.execute`, a batch of one), in a
batch (`CommandService.apply`, rounds of many) or as a dry run (which plans through the
same pipeline and writes nothing). If the two entry points drift apart, these fail."""

from __future__ import annotations

import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from common import assert_chain_intact

from cqrs_cli.domain.item import CreateItem, DeleteItem, UpdateItem
from cqrs_cli.domain.validation import InvalidInput
from cqrs_cli.errors import ConflictError, CqrsError, NotFoundError, WrongExpectedVersion
from cqrs_cli.journal.base import Journal
from cqrs_cli.journal.memory_journal import MemoryBatch, MemoryJournal
from cqrs_cli.journal.records import RecordedEvent
from cqrs_cli.journal.sqlite_journal import SqliteJournal
from cqrs_cli.write.batch import ROUND, BatchLineError
from cqrs_cli.write.command_service import CommandService
from cqrs_cli.write.pipeline import BatchCommand
from cqrs_cli.write.results import WriteResult

NFD = unicodedata.normalize("NFD", "café")

# Every path through the pipeline: each outcome, an already applied key (in the same
# run and as the key of an unchanged command), an expected version, a correlation id, a
# deleted item created again, an id that is normalised, several events of one item.
SEQUENCE: list[BatchCommand] = [
    BatchCommand(1, CreateItem("Item1", "first")),
    BatchCommand(2, CreateItem("Item2"), idempotency_key="k2", correlation_id="c2"),
    BatchCommand(3, UpdateItem("Item1", "second"), expected_version=1),
    BatchCommand(4, UpdateItem("Item1", "second")),  # unchanged
    BatchCommand(5, CreateItem("Item2"), idempotency_key="k2"),  # already applied
    BatchCommand(6, DeleteItem("Item2"), expected_version=1, idempotency_key="k6"),
    BatchCommand(7, CreateItem("Item2", "again"), expected_version=2),
    BatchCommand(8, CreateItem(NFD, "accent")),
    BatchCommand(9, UpdateItem("café", "composed"), correlation_id="c9"),
    BatchCommand(10, DeleteItem("Item2"), idempotency_key="k6"),  # already applied
    BatchCommand(11, UpdateItem("Item1", "second"), idempotency_key="k11"),  # unchanged
    BatchCommand(12, UpdateItem("Item1", "third"), idempotency_key="k11"),  # the key is free
    BatchCommand(13, UpdateItem("Item2", "again")),  # unchanged: its third event says so
    BatchCommand(14, DeleteItem("Item1"), expected_version=3),
]


def deterministic() -> dict[str, Callable[[], str]]:
    """A clock and ids that are the same for every run: two journals written with them
    hold the same bytes when the same events went in, hashes included."""
    counter = iter(range(1, 10**9))
    return {
        "clock": lambda: "2024-01-01T00:00:00.000000Z",
        "new_id": lambda: f"id-{next(counter):08d}",
    }


def execute(service: CommandService, line: BatchCommand, dry_run: bool = False) -> WriteResult:
    return service.execute(
        line.command,
        expected_version=line.expected_version,
        idempotency_key=line.idempotency_key,
        correlation_id=line.correlation_id,
        dry_run=dry_run,
    )


def applied(service: CommandService, lines: list[BatchCommand]) -> list[WriteResult]:
    results: list[WriteResult] = []
    service.apply(lines, on_result=lambda _line, result: results.append(result))
    return results


def shown(result: WriteResult) -> tuple[object, ...]:
    """What a caller sees of a result: all of it (its JSON, its text, its events)."""
    return (str(result), result.to_json(), result.events)


Backend = Callable[[Path], Iterator[Journal]]


def sqlite_journal(folder: Path) -> Iterator[Journal]:
    journal = SqliteJournal.open(str(folder / "journal.db"))
    yield journal
    journal.close()


def memory_journal(_folder: Path) -> Iterator[Journal]:
    yield MemoryJournal("00000000-0000-7000-8000-000000000000")


BACKENDS = {"sqlite": sqlite_journal, "memory": memory_journal}


@pytest.fixture(params=sorted(BACKENDS))
def new_journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Journal]]:
    """Makes empty journals of one backend, each in its own folder."""
    opened: list[Iterator[Journal]] = []

    def make() -> Journal:
        folder = tmp_path / f"journal{len(opened)}"
        folder.mkdir()
        journal_of = BACKENDS[request.param](folder)
        opened.append(journal_of)
        return next(journal_of)

    yield make
    for journal_of in opened:
        next(journal_of, None)


def everything(journal: Journal) -> list[RecordedEvent]:
    return journal.read_all(limit=10**6)


def test_a_sequence_gives_the_same_results_and_journal_alone_and_in_a_batch(
    new_journal: Callable[[], Journal],
) -> None:
    alone, batched = new_journal(), new_journal()
    single = CommandService(journal=alone, **deterministic())
    one_by_one = [execute(single, line) for line in SEQUENCE]
    in_a_batch = applied(CommandService(journal=batched, **deterministic()), SEQUENCE)

    assert [shown(r) for r in in_a_batch] == [shown(r) for r in one_by_one]
    assert everything(batched) == everything(alone)  # every column, ids and hashes too
    assert_chain_intact(everything(alone))
    # The sequence did take every path.
    assert [(r.outcome, r.already_applied) for r in one_by_one] == [
        ("created", False),
        ("created", False),
        ("updated", False),
        ("unchanged", False),
        ("created", True),
        ("deleted", False),
        ("created", False),
        ("created", False),
        ("updated", False),
        ("deleted", True),
        ("unchanged", False),
        ("updated", False),
        ("unchanged", False),
        ("deleted", False),
    ]


def test_a_batch_over_several_rounds_matches_the_same_commands_one_by_one(
    new_journal: Callable[[], Journal],
) -> None:
    # Rounds read their keys and streams once each: state and keys must carry over from
    # one round to the next as they do between single commands.
    lines = [
        BatchCommand(n, command, idempotency_key=key)
        for n, (command, key) in enumerate(
            [(CreateItem(f"I{n % 700}", "a"), f"c{n % 700}") for n in range(ROUND + 400)]
            + [(UpdateItem(f"I{n}", f"b{n % 3}"), None) for n in range(0, 700, 7)]
            + [(UpdateItem(f"I{n}", "b0"), None) for n in range(0, 700, 7)],
            start=1,
        )
    ]
    alone, batched = new_journal(), new_journal()
    single = CommandService(journal=alone, **deterministic())
    one_by_one = [execute(single, line) for line in lines]
    in_a_batch = applied(CommandService(journal=batched, **deterministic()), lines)
    assert [shown(r) for r in in_a_batch] == [shown(r) for r in one_by_one]
    assert everything(batched) == everything(alone)
    assert sum(r.already_applied for r in one_by_one) == ROUND + 400 - 700


# Each failing command, after SETUP, with the error it must give through either door.
SETUP = [
    BatchCommand(1, CreateItem("Live", "text")),
    BatchCommand(2, CreateItem("Gone")),
    BatchCommand(3, DeleteItem("Gone")),
    BatchCommand(4, CreateItem("Keyed"), idempotency_key="used"),
]
FAILURES: dict[str, tuple[BatchCommand, type[CqrsError], str]] = {
    "exists": (BatchCommand(5, CreateItem("Live")), ConflictError, "already exists"),
    "unknown": (BatchCommand(5, UpdateItem("Nope", "x")), NotFoundError, "does not exist"),
    "deleted": (BatchCommand(5, DeleteItem("Gone")), NotFoundError, "was deleted"),
    "version": (
        BatchCommand(5, UpdateItem("Live", "x"), expected_version=3),
        WrongExpectedVersion,
        "at version 1, not the expected version 3",
    ),
    "key-of-another-item": (
        BatchCommand(5, CreateItem("Other"), idempotency_key="used"),
        ConflictError,
        "already used for another item",
    ),
    "invalid-id": (BatchCommand(5, CreateItem("bad\x1bid")), InvalidInput, "invalid item id"),
    "invalid-key": (
        BatchCommand(5, CreateItem("New"), idempotency_key="tab\there"),
        InvalidInput,
        "invalid idempotency key",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_a_failing_command_fails_alike_alone_in_a_batch_and_as_a_dry_run(
    new_journal: Callable[[], Journal], case: str
) -> None:
    line, error, message = FAILURES[case]
    journal = new_journal()
    service = CommandService(journal=journal)
    service.apply(SETUP)
    before = everything(journal)

    with pytest.raises(error, match=message) as alone:
        execute(service, line)
    with pytest.raises(error, match=message) as planned:
        execute(service, line, dry_run=True)
    with pytest.raises(BatchLineError) as batched:
        service.apply([BatchCommand(1, CreateItem("Fine")), line])
    assert type(batched.value.cause) is type(alone.value)
    assert str(batched.value) == f"line 5: {alone.value}" == f"line 5: {planned.value}"
    assert batched.value.exit_code == alone.value.exit_code
    assert everything(journal) == before  # the batch's good line was rolled back too


def test_a_dry_run_plans_what_the_real_command_then_does(
    new_journal: Callable[[], Journal],
) -> None:
    journal = new_journal()
    service = CommandService(journal=journal)
    for line in SEQUENCE:
        before = everything(journal)
        plan = execute(service, line, dry_run=True)
        assert everything(journal) == before
        done = execute(service, line)
        assert (plan.item_id, plan.outcome, plan.version) == (
            done.item_id,
            done.outcome,
            done.version,
        )
        assert plan.already_applied == done.already_applied
        if plan.dry_run:  # it would append: the events it shows are the ones appended
            assert [
                (e.stream_id, e.stream_version, e.event_type, e.schema_version, e.data)
                for e in plan.events
            ] == [
                (e.stream_id, e.stream_version, e.event_type, e.schema_version, e.data)
                for e in done.events
            ]
            history = [e for e in before if e.stream_id == plan.item_id]
            assert plan.position == (history[-1].position if history else None)
        else:  # unchanged or already applied: a dry run says just what the real one says
            assert shown(plan) == shown(done)


def test_a_dry_run_takes_no_write_lock(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    CommandService(store).create_item("Item1", "a")
    monkeypatch.setenv("CQRS_BUSY_TIMEOUT", "5")
    holder = sqlite3.connect(str(store / "journal.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, in the middle of its transaction
    try:
        started = time.monotonic()
        with CommandService(store) as service:
            result = service.update_item("Item1", "b", dry_run=True)
        assert time.monotonic() - started < 2  # did not wait for the lock
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (result.outcome, result.version, result.position, result.dry_run) == (
        "updated",
        2,
        1,
        True,
    )


def test_a_single_command_reads_its_stream_before_taking_the_write_lock(store: Path) -> None:
    # Under the write lock a single command only looks up its key, checks its stream's
    # version and appends: reading and folding the stream there made writers queue past
    # the busy timeout under load (tests/test_sync_concurrency.py).
    class Watched(MemoryJournal):
        transactions = 0

        def batch(self, *, single: bool = False) -> MemoryBatch:
            self.transactions += 1
            return WatchedBatch(self)

    class WatchedBatch(MemoryBatch):
        def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[RecordedEvent]]:
            raise AssertionError("a stream read inside the command's transaction")

    journal = Watched()
    service = CommandService(journal=journal)
    for line in SEQUENCE:
        execute(service, line)
    # One transaction per command, but a create is first tried on its item as new, so
    # re-creating the deleted Item2 (line 7) takes a second one.
    assert journal.transactions == len(SEQUENCE) + 1
