"""The journal contract (cqrs_cli/journal/base.py), appends and reads: every test runs
against every backend (tests/journal_backends.py).

- appends are read back in stream and position order, with every envelope field;
- per-stream optimistic concurrency: a stale expected version is refused, writing nothing;
- an event id is stored at most once; an idempotency key applies a command at most once;
- positions increase and the hash chain links every event to the one before;
- read order: a reader that has seen position P never later gets an event at or below
  P, with concurrent writers;
- export, import, export is byte-identical, within and across backends, and verify
  passes on the copy and fails on a tampered journal, naming the position.
"""

from __future__ import annotations

import threading

import pytest
from common import assert_chain_intact
from journal_backends import (
    BACKENDS,
    RECORDED_AT,
    Backend,
    append,
    backend,
    journal,
    make_backend,
    new_event,
    read_everything,
)

from cqrs_cli.errors import ConflictError, StorageError, WrongExpectedVersion
from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.base import Journal
from cqrs_cli.journal.batching import append_once
from cqrs_cli.journal.chain import GENESIS
from cqrs_cli.journal.records import AppendMetadata
from cqrs_cli.journal.transfer import export_lines, import_journal
from cqrs_cli.journal.verify import JournalFault, verify

__all__ = ["backend", "journal"]  # the fixtures, imported for pytest

# --- Appending and reading -------------------------------------------------------------------


def test_a_new_journal_is_empty(journal: Journal) -> None:
    assert journal.head() == 0
    assert journal.read_all() == []
    assert journal.read_stream("Item1") == []
    assert journal.count_after(0) == 0
    assert journal.find_by_idempotency_key("k") == []


def test_appended_events_are_read_back_in_stream_order(journal: Journal) -> None:
    first = append(journal, "Item1", 0, key="k1", correlation_id="corr")
    append(journal, "Other", 0)
    second = append(journal, "Item1", 1, count=2)

    stream = journal.read_stream("Item1")
    assert [e.stream_version for e in stream] == [1, 2, 3]
    assert [e.position for e in stream] == [1, 3, 4]
    assert stream == [*first.events, *second.events]
    assert not first.already_applied and not second.already_applied
    assert stream[0].data == '{"description":"Item1 #1"}'
    assert stream[0].event_type == "ItemCreated"
    assert stream[0].recorded_at == RECORDED_AT
    assert (stream[0].idempotency_key, stream[0].correlation_id) == ("k1", "corr")
    assert journal.head() == 4
    assert journal.count_after(1) == 3
    assert [e.stream_id for e in journal.read_all(after=1, limit=2)] == ["Other", "Item1"]


def test_reads_filter_by_stream_and_type_in_position_order(journal: Journal) -> None:
    append(journal, "A", 0, count=2)
    append(journal, "B", 0)
    append_once(
        journal,
        "A",
        2,
        [new_event(event_type="ItemDeleted")],
        AppendMetadata(RECORDED_AT, new_uuid()),
    )
    assert [e.position for e in journal.read_all(stream_id="A")] == [1, 2, 4]
    assert [e.position for e in journal.read_all(after=1, stream_id="A", limit=1)] == [2]
    assert [e.position for e in journal.read_all(event_type="ItemDeleted")] == [4]
    assert [e.position for e in journal.read_all(stream_id="B", event_type="ItemDeleted")] == []


def test_appending_at_the_wrong_version_is_refused_and_writes_nothing(journal: Journal) -> None:
    append(journal, "Item1", 0)
    with pytest.raises(WrongExpectedVersion) as caught:
        append(journal, "Item1", 0)
    assert isinstance(caught.value, ConflictError)
    assert caught.value.exit_code == 4
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    with pytest.raises(WrongExpectedVersion):
        append(journal, "Item1", 5)
    assert journal.head() == 1


def test_an_event_id_is_stored_at_most_once(journal: Journal) -> None:
    event = new_event("a")
    append_once(journal, "Item1", 0, [event], AppendMetadata(RECORDED_AT, new_uuid()))
    with pytest.raises(StorageError):
        append_once(journal, "Item2", 0, [event], AppendMetadata(RECORDED_AT, new_uuid()))
    assert journal.head() == 1


def test_an_idempotency_key_applies_a_command_at_most_once(journal: Journal) -> None:
    first = append(journal, "Item1", 0, count=2, key="retry-me")
    again = append(journal, "Item1", 0, count=2, key="retry-me")
    assert again.already_applied
    assert again.events == first.events
    assert journal.head() == 2
    # Even at another version or on another stream, the key says "done already".
    elsewhere = append(journal, "Item2", 0, key="retry-me")
    assert elsewhere.already_applied
    assert elsewhere.events == first.events
    assert journal.find_by_idempotency_key("retry-me") == first.events
    assert journal.find_by_idempotency_key("never-used") == []
    assert journal.head() == 2


def test_every_event_hash_covers_its_content_and_links_to_the_previous_one(
    journal: Journal,
) -> None:
    append(journal, "Item1", 0, key="k")
    append(journal, "Item2", 0, count=3, correlation_id="c")
    append(journal, "Item1", 1)
    events = read_everything(journal)
    assert len(events) == 5
    assert events[0].prev_hash == GENESIS
    assert_chain_intact(events)
    assert len({e.hash for e in events}) == 5


def test_a_second_handle_sees_the_same_journal(journal: Journal, backend: Backend) -> None:
    append(journal, "Item1", 0)
    other = backend.another_handle(journal)
    assert other.journal_id == journal.journal_id
    append(other, "Item1", 1)
    assert [e.stream_version for e in journal.read_stream("Item1")] == [1, 2]
    assert journal.head() == other.head() == 2


# --- Concurrency and read order ----------------------------------------------------------------


def test_concurrent_writers_lose_nothing_and_readers_never_go_back(
    journal: Journal, backend: Backend
) -> None:
    """Four writer threads, each with its own handle, append to shared streams with the
    optimistic-concurrency retry the write side uses; a reader thread follows read_all
    with a checkpoint, as sync does. Every append lands once, versions stay 1..n per
    stream, and the reader sees every event once, in increasing positions."""
    writers, appends, streams = 4, 40, 5
    handles = [backend.another_handle(journal) for _ in range(writers)]
    reader = backend.another_handle(journal)
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write(handle: Journal, number: int) -> None:
        try:
            for n in range(appends):
                stream_id = f"S{(number + n) % streams}"
                while True:
                    version = len(handle.read_stream(stream_id))
                    try:
                        append(handle, stream_id, version, key=f"w{number}-{n}")
                        break
                    except WrongExpectedVersion:
                        continue
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def follow() -> None:
        checkpoint = 0
        while True:
            finished = done.is_set()
            for event in reader.read_all(after=checkpoint, limit=50):
                assert event.position > checkpoint, "a reader went back"
                checkpoint = event.position
                seen.append(event.position)
            if finished and checkpoint == reader.head():
                return

    threads = [threading.Thread(target=write, args=(h, i)) for i, h in enumerate(handles)]
    follower = threading.Thread(target=follow)
    follower.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    follower.join(timeout=60)
    assert not errors, errors
    events = read_everything(journal, page=1000)
    assert len(events) == writers * appends
    assert seen == [e.position for e in events]
    assert_chain_intact(events)
    for s in range(streams):
        versions = [e.stream_version for e in journal.read_stream(f"S{s}")]
        assert versions == list(range(1, len(versions) + 1))


# --- Export, import and verify -----------------------------------------------------------------


def filled(journal: Journal) -> Journal:
    append(journal, "Item1", 0, key="k1", correlation_id="c1")
    append(journal, "Item2", 0, count=2)
    append_once(
        journal,
        "Item1",
        1,
        [new_event(event_type="ItemDeleted")],
        AppendMetadata(RECORDED_AT, "cmd"),
    )
    append(journal, "Item1", 2, key="re-create")
    return journal


def copy_into(target: Backend, lines: list[str]) -> Journal:
    create, opened = target.create_from()
    journal_id, count = import_journal((line.encode() for line in lines), create)
    copy = opened()
    assert copy is not None
    assert (copy.journal_id, copy.count_after(0)) == (journal_id, count)
    return copy


@pytest.mark.parametrize("target", list(BACKENDS))
def test_export_import_export_is_identical_across_backends(
    journal: Journal,
    target: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> None:
    lines = list(export_lines(filled(journal), batch=2))
    other = make_backend(target, tmp_path_factory.mktemp(target), request)
    try:
        copy = copy_into(other, lines)
        assert list(export_lines(copy)) == lines
        assert read_everything(copy) == read_everything(journal)
        # The copy goes on where the original stopped: versions, positions, chain.
        append(copy, "Item2", 2)
        assert_chain_intact(read_everything(copy))
    finally:
        other.close()


@pytest.mark.parametrize("cut", [2, 5])
def test_an_import_that_fails_leaves_no_journal(
    journal: Journal, backend: Backend, cut: int
) -> None:
    """Events already restored are not kept when a later line fails (here: an export
    cut short, after one event or after all five)."""
    lines = list(export_lines(filled(journal)))[: cut + 1]
    create, opened = backend.create_from()
    with pytest.raises(StorageError, match="without its trailer"):
        import_journal((line.encode() for line in lines), create)
    assert opened() is None


def test_verify_passes_and_names_the_first_tampered_position(
    journal: Journal, backend: Backend
) -> None:
    report = verify(filled(journal))
    assert (report.events, report.head, report.streams) == (5, 5, 2)
    assert report.journal_id == journal.journal_id
    backend.rewrite(journal, 3, data='{"description":"forged"}')
    with pytest.raises(JournalFault) as caught:
        verify(backend.another_handle(journal))
    assert caught.value.position == 3
    assert "edited" in str(caught.value)
