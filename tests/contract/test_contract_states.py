"""The journal contract, state records (journal/base.py, "State records"): every test runs
against every backend (tests/journal_backends.py)."""

from __future__ import annotations

import pytest
from journal_backends import Backend, backend, journal

from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.base import Journal
from cqrs_cli.journal.batching import append_once
from cqrs_cli.journal.records import AppendMetadata, NewEvent, RecordedEvent, StateRecord

__all__ = ["backend", "journal"]  # the fixtures, imported for pytest


def grow(journal: Journal, stream_id: str, count: int) -> list[RecordedEvent]:
    """`count` more events on `stream_id`, one append each."""
    added: list[RecordedEvent] = []
    for _ in range(count):
        version = len(journal.read_stream(stream_id))
        kind = "ItemCreated" if version == 0 else "ItemUpdated"
        event = NewEvent(new_uuid(), kind, 1, f'{{"description":"v{version + 1}"}}')
        metadata = AppendMetadata("2024-01-01T00:00:00.000000Z", new_uuid())
        added += append_once(journal, stream_id, version, [event], metadata).events
    return added


def record_of(event: RecordedEvent, data: str = '{"x":1}') -> StateRecord:
    return StateRecord(event.stream_id, event.stream_version, event.hash, data)


def test_a_state_record_is_saved_with_its_batch_and_read_back(
    journal: Journal, backend: Backend
) -> None:
    events = grow(journal, "A", 3) + grow(journal, "B", 1)
    assert journal.read_state("A") is None
    assert journal.state_records() == []
    with journal.batch() as batch:
        batch.save_state(record_of(events[1]))
        # Seen inside the batch before the commit; a newer save replaces it.
        assert batch.read_states(["A", "B"]) == {"A": record_of(events[1])}
        batch.save_state(record_of(events[2], '{"y":2}'))
        batch.save_state(record_of(events[3]))
        assert batch.read_states(["A"]) == {"A": record_of(events[2], '{"y":2}')}
    other = backend.another_handle(journal)
    assert other.read_state("A") == record_of(events[2], '{"y":2}')
    assert journal.state_records() == [record_of(events[2], '{"y":2}'), record_of(events[3])]
    assert journal.state_records(after="A") == [record_of(events[3])]
    assert journal.state_records(limit=1) == [record_of(events[2], '{"y":2}')]


def test_a_batch_that_fails_saves_no_state_record(journal: Journal) -> None:
    (event,) = grow(journal, "A", 1)
    with pytest.raises(RuntimeError), journal.batch() as batch:
        batch.save_state(record_of(event))
        raise RuntimeError("stop")
    assert journal.read_state("A") is None


def test_streams_are_read_from_a_version_on(journal: Journal) -> None:
    events = grow(journal, "A", 5) + grow(journal, "B", 2)
    assert journal.read_stream("A", 4) == events[3:5]
    assert journal.read_stream("A", 6) == []
    with journal.batch() as batch:
        found = batch.read_streams(["A", "B", "C"], {"A": 4})
        assert found == {"A": events[3:5], "B": events[5:7]}
        # Every stream read this round can be appended to at its version.
        event = NewEvent(new_uuid(), "ItemUpdated", 1, '{"description":"v6"}')
        metadata = AppendMetadata("2024-01-01T00:00:00.000000Z", new_uuid())
        (added,) = batch.append("A", 5, [event], metadata)
        # Reads in a later round see the batch's own appends, from a version on too.
        assert batch.read_streams(["A"], {"A": 5}) == {"A": [events[4], added]}


def test_the_tail_starts_at_the_state_record_when_the_stream_holds_its_event(
    journal: Journal,
) -> None:
    events = grow(journal, "A", 5)
    assert journal.read_tail("A") == events
    assert journal.read_tail("nothing") == []
    with journal.batch() as batch:
        batch.save_state(record_of(events[2]))
    assert journal.read_tail("A") == events[2:]
    # A record naming a version the stream does not hold hides nothing.
    with journal.batch() as batch:
        batch.save_state(StateRecord("A", 9, events[-1].hash, "{}"))
    assert journal.read_tail("A") == events
