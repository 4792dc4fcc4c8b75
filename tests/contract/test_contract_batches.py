"""The journal contract, batches (`Journal.batch()`): many appends in one transaction.
Every test runs against every backend (tests/journal_backends.py).

Tested through the public interface only, with rounds (a read of some streams, then
appends to them) sized for every insert path of the SQLite backend: fewer than 200 rows
(executemany), 200 or more (one bulk statement), more than 1000 (several); rows buffered
by a round are inserted by the next read or at commit, so errors may surface at either:

- batches of many sizes and round shapes round-trip exactly: what `append` returned is
  what the journal holds (all 13 fields), positions 1..N without gaps, the hash chain
  intact, `verify` passing;
- reads inside a batch (`read_streams`, `stream_version`, `find_by_idempotency_keys`)
  see the batch's own appends, inserted or not yet, and the version checks use them;
- a block that raises (RuntimeError, KeyboardInterrupt) writes nothing, whether or not
  a round is being inserted at that moment;
- a failing insert (a duplicate event_id) is reported as StorageError "append refused"
  and writes nothing;
- afterwards the journal is usable: single appends, later batches, other handles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from common import assert_chain_intact
from journal_backends import Backend, backend, expected_link, journal

from cqrs_cli.errors import StorageError, WrongExpectedVersion
from cqrs_cli.journal.base import Journal, JournalBatch
from cqrs_cli.journal.batching import append_once
from cqrs_cli.journal.records import AppendMetadata, NewEvent, RecordedEvent
from cqrs_cli.journal.verify import verify

__all__ = ["backend", "journal"]  # the fixtures, imported for pytest

RECORDED_AT = "2024-01-02T03:04:05.000006Z"

Command = tuple[str, int]
"""One command of a round: (stream id, how many events it appends)."""

History = dict[str, list[RecordedEvent]]
"""What each stream holds, as the test expects it."""


# --- Helpers ---------------------------------------------------------------------------------


def event_data(n: int) -> str:
    """Valid ItemCreated/ItemUpdated data, with characters that need escaping."""
    return json.dumps(
        {"description": f'#{n} "quoted" back\\slash ünï ☃ \u2028'}, ensure_ascii=False
    )


class Events:
    """Deterministic events and metadata, numbered in the order they are made: two
    factories with the same prefix make the same events."""

    def __init__(self, prefix: str = "evt") -> None:
        self.prefix = prefix
        self.events_made = 0
        self.commands_made = 0

    def new(self, count: int, first_version: int = 1) -> list[NewEvent]:
        made = []
        for version in range(first_version, first_version + count):
            n = self.events_made
            self.events_made += 1
            event_type = "ItemCreated" if version == 1 else "ItemUpdated"
            made.append(NewEvent(f"{self.prefix}-{n:07d}", event_type, 1, event_data(n)))
        return made

    def metadata(self) -> AppendMetadata:
        """Every field varies; about half the commands have no idempotency key, a third
        no correlation id."""
        n = self.commands_made
        self.commands_made += 1
        return AppendMetadata(
            f"2024-01-02T03:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000000:06d}Z",
            f"{self.prefix}-cmd-{n:07d}",
            f"{self.prefix}-key-{n}" if n % 2 == 0 else None,
            f"corr-{n % 5}" if n % 3 else None,
        )


def plan(total: int, round_sizes: Sequence[int], streams: int = 211) -> list[list[Command]]:
    """`total` events in rounds of the given sizes (cycled; the last round takes what is
    left); commands of 1 to 3 events over `streams` streams, so that a stream recurs
    within a round (1000 events) and across rounds."""
    rounds: list[list[Command]] = []
    done = command = 0
    while done < total:
        size = min(round_sizes[len(rounds) % len(round_sizes)], total - done)
        commands: list[Command] = []
        left = size
        while left:
            count = min(1 + command % 3, left)
            commands.append((f"Item{command % streams}", count))
            left -= count
            command += 1
        rounds.append(commands)
        done += size
    return rounds


def as_rows(found: History) -> dict[str, list[tuple[object, ...]]]:
    """Streams with their events as plain tuples: a failed comparison shows every field."""
    return {stream_id: [e.as_tuple() for e in events] for stream_id, events in found.items()}


def run_round(
    batch: JournalBatch, commands: Sequence[Command], history: History, events: Events
) -> list[RecordedEvent]:
    """One round: read the commands' streams, checking that the read returns exactly
    what `history` says they hold, then append each command at the version read."""
    stream_ids = [stream_id for stream_id, _ in commands]
    found = batch.read_streams(stream_ids)
    expected = {s: history[s] for s in dict.fromkeys(stream_ids) if history.get(s)}
    assert as_rows(found) == as_rows(expected)
    appended: list[RecordedEvent] = []
    for stream_id, count in commands:
        stream = history.setdefault(stream_id, [])
        version = len(stream)
        recorded = batch.append(
            stream_id, version, events.new(count, version + 1), events.metadata()
        )
        assert [e.stream_version for e in recorded] == list(range(version + 1, version + count + 1))
        stream += recorded
        appended += recorded
    return appended


def run_batch(
    journal: Journal, rounds: Sequence[Sequence[Command]], history: History, events: Events
) -> list[RecordedEvent]:
    """All `rounds` in one batch; the events `append` returned, in order."""
    appended: list[RecordedEvent] = []
    with journal.batch() as batch:
        for commands in rounds:
            appended += run_round(batch, commands, history, events)
    return appended


def history_of(events: Sequence[RecordedEvent]) -> History:
    history: History = {}
    for event in events:
        history.setdefault(event.stream_id, []).append(event)
    return history


def read_everything(journal: Journal) -> list[RecordedEvent]:
    events: list[RecordedEvent] = []
    while page := journal.read_all(after=events[-1].position if events else 0, limit=1000):
        events += page
    return events


def assert_same_events(got: Sequence[RecordedEvent], expected: Sequence[RecordedEvent]) -> None:
    assert [e.as_tuple() for e in got] == [e.as_tuple() for e in expected]


def assert_journal_sound(journal: Journal, expected: Sequence[RecordedEvent]) -> None:
    """The journal holds exactly `expected`, at positions 1..N, chained, verifiable."""
    stored = read_everything(journal)
    assert_same_events(stored, expected)
    assert [e.position for e in stored] == list(range(1, len(expected) + 1))
    assert_chain_intact(stored)
    report = verify(journal)
    assert (report.events, report.head) == (len(expected), len(expected))
    assert report.streams == len({e.stream_id for e in expected})


def assert_unchanged_and_usable(
    journal: Journal, backend: Backend, before: Sequence[RecordedEvent]
) -> None:
    """After a batch that failed: the journal holds `before`, for this handle and a new
    one, the write lock is free, and a plain append continues the positions and the
    chain."""
    assert_same_events(read_everything(journal), before)
    backend.assert_lock_free(journal)
    assert_same_events(read_everything(backend.another_handle(journal)), before)
    (added,) = append_once(
        journal,
        "After",
        0,
        [NewEvent("after-1", "ItemCreated", 1, event_data(0))],
        AppendMetadata(RECORDED_AT, "after-cmd"),
    ).events
    assert added.position == len(before) + 1
    assert added.prev_hash == expected_link(journal, before, "After")
    assert_journal_sound(journal, [*before, added])


def prefill(journal: Journal) -> list[RecordedEvent]:
    """A few events appended one command at a time, outside any batch."""
    events = Events("old")
    added: list[RecordedEvent] = []
    for n in range(3):
        added += append_once(journal, f"Old{n}", 0, events.new(2), events.metadata()).events
    return added


# --- 1. Round trips --------------------------------------------------------------------------

SIZES = [1, 199, 200, 201, 999, 1000, 1001, 2345]
ROUND_SHAPES = {
    "rounds-1000-137": (1000, 137),
    "rounds-199-200-201": (199, 200, 201),
    "rounds-13-250": (13, 250),
    "one-round": (10_000,),
}


@pytest.mark.parametrize("shape", list(ROUND_SHAPES))
@pytest.mark.parametrize("total", SIZES)
def test_a_batch_round_trips_exactly(journal: Journal, total: int, shape: str) -> None:
    history: History = {}
    appended = run_batch(journal, plan(total, ROUND_SHAPES[shape]), history, Events())
    assert len(appended) == total
    assert_journal_sound(journal, appended)
    for stream_id, stream in history.items():
        assert_same_events(journal.read_stream(stream_id), stream)


@pytest.mark.parametrize("total", [150, 1201])
def test_a_batch_continues_the_positions_and_chain_of_a_journal(
    journal: Journal, total: int
) -> None:
    before = prefill(journal)
    history = history_of(before)
    # The plan's streams include the prefilled ones: their versions continue too.
    rounds = plan(total, (1000, 137))
    rounds[0].insert(0, ("Old1", 2))
    appended = run_batch(journal, rounds, history, Events())
    assert appended[0].position == len(before) + 1
    assert appended[0].prev_hash == expected_link(journal, before, appended[0].stream_id)
    assert [e.stream_version for e in history["Old1"]] == list(range(1, len(history["Old1"]) + 1))
    assert_journal_sound(journal, [*before, *appended])


def test_two_batches_in_a_row_continue_each_other(journal: Journal) -> None:
    history: History = {}
    events = Events()
    first = run_batch(journal, plan(1234, (1000, 137)), history, events)
    second = run_batch(journal, plan(567, (300,)), history, events)
    assert second[0].position == len(first) + 1
    assert_journal_sound(journal, [*first, *second])


def test_an_empty_batch_writes_nothing_and_releases_the_lock(
    journal: Journal, backend: Backend
) -> None:
    before = prefill(journal)
    with journal.batch() as batch:
        assert batch.read_streams(["Old0", "Nothing"]) == {"Old0": before[:2]}
    assert_same_events(read_everything(journal), before)
    backend.assert_lock_free(journal)


# --- 2. Reads inside a batch see the batch's own appends ------------------------------------


@pytest.mark.parametrize("first_round", [5, 300, 1500])
def test_reads_in_a_batch_see_its_own_appends(journal: Journal, first_round: int) -> None:
    """Round 1 appends one event to each of `first_round` streams (5: executemany; 300:
    one bulk statement; 1500: two, and reads of more than 500 stream ids)."""
    events = Events()
    streams = [f"S{i}" for i in range(first_round)]
    last = streams[-1]
    appended: list[RecordedEvent] = []
    with journal.batch() as batch:
        # Round 1.
        assert batch.read_streams(streams) == {}
        round_1: dict[str, RecordedEvent] = {}
        for stream_id in streams:
            metadata = AppendMetadata(RECORDED_AT, f"cmd-{stream_id}", f"k-{stream_id}")
            (round_1[stream_id],) = batch.append(stream_id, 0, events.new(1), metadata)
        appended += round_1.values()
        # Keys of the current round, none of it inserted yet.
        assert batch.find_by_idempotency_keys(["k-S0", f"k-{last}", "never"]) == {
            "k-S0": [round_1["S0"]],
            f"k-{last}": [round_1[last]],
        }

        # Round 2: this read hands round 1's rows to the insert.
        found = batch.read_streams([*streams, "Fresh"])
        assert as_rows(found) == as_rows({s: [round_1[s]] for s in streams})
        assert batch.stream_version("S0") == 1
        assert batch.stream_version("Fresh") == 0
        for wrong in (0, 2):
            with pytest.raises(WrongExpectedVersion) as caught:
                batch.append("S0", wrong, events.new(1), AppendMetadata(RECORDED_AT, "bad"))
            assert (caught.value.expected, caught.value.actual) == (wrong, 1)
        metadata = AppendMetadata(RECORDED_AT, "cmd-r2", "k-round-2", "corr-r2")
        round_2 = batch.append("S0", 1, events.new(2, 2), metadata)
        assert [e.stream_version for e in round_2] == [2, 3]
        assert round_2[0].prev_hash == expected_link(journal, appended, "S0")
        (fresh,) = batch.append("Fresh", 0, events.new(1), AppendMetadata(RECORDED_AT, "cmd-f"))
        with pytest.raises(WrongExpectedVersion):  # the append just made counts
            batch.append("Fresh", 0, events.new(1), AppendMetadata(RECORDED_AT, "bad"))
        appended += [*round_2, fresh]
        # A key from round 1 (inserted, or being inserted) and one from this round.
        keys = ["k-S0", f"k-{last}", "k-round-2", "never"]
        assert batch.find_by_idempotency_keys(keys) == {
            "k-S0": [round_1["S0"]],
            f"k-{last}": [round_1[last]],
            "k-round-2": round_2,
        }

        # Round 3: both earlier rounds visible, whatever has been inserted by now.
        found = batch.read_streams(["S0", "Fresh", "Nowhere"])
        assert as_rows(found) == as_rows({"S0": [round_1["S0"], *round_2], "Fresh": [fresh]})
        assert batch.stream_version("Nowhere") == 0
        # A stream not read by read_streams: stream_version reads it, then it can be
        # appended (nothing is read in between).
        assert batch.stream_version(last) == 1
        round_3 = batch.append(last, 1, events.new(1, 2), AppendMetadata(RECORDED_AT, "cmd-3"))
        appended += round_3
        assert batch.find_by_idempotency_keys(["k-round-2"]) == {"k-round-2": round_2}

    assert_journal_sound(journal, appended)
    assert_same_events(journal.read_stream("S0"), [round_1["S0"], *round_2])
    assert_same_events(journal.read_stream(last), [round_1[last], *round_3])
    assert_same_events(journal.find_by_idempotency_key("k-round-2"), round_2)


def test_appending_without_reading_the_stream_this_round_is_refused(
    journal: Journal, backend: Backend
) -> None:
    events = Events()
    refused = "without reading its version"
    with pytest.raises(RuntimeError, match=refused), journal.batch() as batch:
        batch.append("Item1", 0, events.new(1), events.metadata())
    with pytest.raises(RuntimeError, match=refused), journal.batch() as batch:
        batch.read_streams(["Item1"])
        batch.append("Item1", 0, events.new(1), events.metadata())
        batch.read_streams(["Item2"])  # a new round: Item1's version is not known
        batch.append("Item1", 1, events.new(1, 2), events.metadata())
    assert_unchanged_and_usable(journal, backend, [])


# --- 3. A block that raises writes nothing ----------------------------------------------------

MOMENTS = ["in-round-1", "after-round-2-read", "after-idempotency-read"]
"""When the block raises: with only round 1 buffered; once round 2's read has handed
round 1's 300 rows to the insert; once a later read has waited for every insert."""


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_block_that_raises_writes_nothing(
    journal: Journal, backend: Backend, moment: str, error: type[BaseException]
) -> None:
    before = prefill(journal)
    history = history_of(before)
    rounds = plan(600, (300,))
    rounds[0].insert(0, ("Old0", 1))  # an existing stream too
    events = Events()
    with pytest.raises(error, match="stop here"), journal.batch() as batch:
        run_round(batch, rounds[0], history, events)
        if moment != "in-round-1":
            run_round(batch, rounds[1], history, events)
        if moment == "after-idempotency-read":
            assert batch.find_by_idempotency_keys(["evt-key-0"])
        raise error("stop here")
    assert_unchanged_and_usable(journal, backend, before)
    # The same events again, to the last field (ids included): none of them was kept.
    stored = read_everything(journal)
    appended = run_batch(journal, rounds, history_of(stored), Events())
    assert_journal_sound(journal, [*stored, *appended])


# --- 4. A failing insert is reported and writes nothing ---------------------------------------

EXISTING_ID = "existing-event-id"

# (round sizes, (round, index) of the event given a duplicate id, that id, whether one
# more read_streams follows the last round)
FAILURES = {
    # 200 rows or more: the bulk statement.
    "bulk-at-commit": ([300], (0, 150), EXISTING_ID, False),
    "bulk-handed-off-by-a-read": ([300], (0, 150), EXISTING_ID, True),
    "bulk-handed-off-then-a-round": ([300, 20], (0, 299), EXISTING_ID, True),
    "bulk-second-statement-of-two": ([1500], (0, 1200), EXISTING_ID, True),
    "bulk-first-statement-of-two": ([1500], (0, 0), EXISTING_ID, False),
    "bulk-duplicate-of-an-earlier-round": ([300, 300], (1, 10), "r0-e7", True),
    # Fewer rows: executemany.
    "small-at-next-read": ([5], (0, 2), EXISTING_ID, True),
    "small-at-commit": ([5, 3], (1, 0), EXISTING_ID, False),
    "small-duplicate-within-the-round": ([5], (0, 3), "r0-e1", False),
    "small-duplicate-of-an-earlier-bulk-round": ([250, 5], (1, 4), "r0-e249", True),
}


def failing_batch(
    journal: Journal,
    sizes: Sequence[int],
    duplicate: tuple[int, int] | None,
    duplicate_id: str,
    read_after: bool,
) -> list[RecordedEvent]:
    """Rounds of one-event commands on new streams; the event at `duplicate` (if any)
    gets `duplicate_id`, every other event id is r<round>-e<index>."""
    appended: list[RecordedEvent] = []
    with journal.batch() as batch:
        for r, size in enumerate(sizes):
            streams = [f"R{r}-{i}" for i in range(size)]
            assert batch.read_streams(streams) == {}
            for i, stream_id in enumerate(streams):
                event_id = duplicate_id if (r, i) == duplicate else f"r{r}-e{i}"
                event = NewEvent(event_id, "ItemCreated", 1, event_data(i))
                metadata = AppendMetadata(RECORDED_AT, f"c{r}-{i}", f"k{r}-{i}")
                appended += batch.append(stream_id, 0, [event], metadata)
        if read_after:
            batch.read_streams(["R0-0"])
    return appended


@pytest.mark.parametrize(
    ("sizes", "duplicate", "duplicate_id", "read_after"),
    list(FAILURES.values()),
    ids=list(FAILURES),
)
def test_a_failing_insert_is_reported_and_writes_nothing(
    journal: Journal,
    backend: Backend,
    sizes: list[int],
    duplicate: tuple[int, int],
    duplicate_id: str,
    read_after: bool,
) -> None:
    before = append_once(
        journal,
        "Existing",
        0,
        [NewEvent(EXISTING_ID, "ItemCreated", 1, event_data(0))],
        AppendMetadata(RECORDED_AT, "existing-cmd"),
    ).events
    with pytest.raises(StorageError, match="append refused") as caught:
        failing_batch(journal, sizes, duplicate, duplicate_id, read_after)
    assert "event_id" in str(caught.value)
    assert journal.locator in str(caught.value)
    assert_unchanged_and_usable(journal, backend, before)
    # The same batch without the duplicate goes in: none of its ids was kept.
    stored = read_everything(journal)
    appended = failing_batch(journal, sizes, None, "", read_after)
    assert len(appended) == sum(sizes)
    assert_journal_sound(journal, [*stored, *appended])


# --- 5. Single appends after a big batch -------------------------------------------------------


def test_single_appends_work_after_a_big_batch(journal: Journal, backend: Backend) -> None:
    events = Events()
    history: History = {}
    appended = run_batch(journal, plan(2345, (1000, 137)), history, events)
    total = len(appended)

    stream = history["Item0"]
    result = append_once(
        journal,
        "Item0",
        len(stream),
        events.new(1, len(stream) + 1),
        AppendMetadata(RECORDED_AT, "single-cmd", "single-key"),
    )
    assert not result.already_applied
    (single,) = result.events
    assert (single.position, single.stream_version) == (total + 1, len(stream) + 1)
    assert single.prev_hash == expected_link(journal, appended, "Item0")

    # A key used in the batch: already applied, the batch's events returned.
    key_events = [e for e in appended if e.idempotency_key == "evt-key-0"]
    assert key_events
    replay = append_once(
        journal, "Elsewhere", 0, events.new(1), AppendMetadata(RECORDED_AT, "again", "evt-key-0")
    )
    assert replay.already_applied
    assert_same_events(replay.events, key_events)

    # The batch's versions count for the version check.
    with pytest.raises(WrongExpectedVersion):
        append_once(journal, "Item1", 0, events.new(1), AppendMetadata(RECORDED_AT, "stale"))
    (other,) = append_once(
        journal,
        "Item1",
        len(history["Item1"]),
        events.new(1, len(history["Item1"]) + 1),
        AppendMetadata(RECORDED_AT, "fresh"),
    ).events
    assert other.position == total + 2

    everything = [*appended, single, other]
    assert_journal_sound(journal, everything)
    assert_same_events(read_everything(backend.another_handle(journal)), everything)
