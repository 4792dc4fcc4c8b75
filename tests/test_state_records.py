"""State records on the write side (write/streams.py): a decision costs the same whatever
the item's history, and a record that is lost, damaged or wrong never changes an answer.

- after enough writes an item has a state record, saved with the events it summarises,
  and a decision reads at most SNAPSHOT_EVERY events, single or in a batch;
- a missing, damaged, mismatched or stale record gives the same outcomes as none;
- `journal verify` checks every record against the fold of its events;
- a journal of schema version 1 (no records) is upgraded in place by its first write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from common import InProcessCli, one_error_line

from cqrs_cli import CommandService, MemoryJournal
from cqrs_cli.domain.codec import encode_state
from cqrs_cli.domain.item import ItemState
from cqrs_cli.journal.locator import find_journal, open_journal
from cqrs_cli.journal.records import RecordedEvent, StateRecord
from cqrs_cli.journal.verify import JournalFault, verify
from cqrs_cli.write.ndjson import parse_lines
from cqrs_cli.write.streams import SNAPSHOT_EVERY

UPDATES = 2 * SNAPSHOT_EVERY + 7


def long_item(service: CommandService, item_id: str = "Item1", updates: int = UPDATES) -> None:
    service.create_item(item_id, "v0")
    for n in range(1, updates + 1):
        service.update_item(item_id, f"v{n}")


class CountingJournal(MemoryJournal):
    """Counts the events read outside batches."""

    read = 0

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        events = super().read_stream(stream_id, from_version)
        self.read += len(events)
        return events


def test_a_long_item_gets_a_state_record_and_its_writes_read_only_the_tail() -> None:
    journal = CountingJournal()
    service = CommandService(journal=journal)
    long_item(service)
    record = journal.read_state("Item1")
    assert record is not None
    assert UPDATES + 1 - SNAPSHOT_EVERY < record.version <= UPDATES + 1
    journal.read = 0
    result = service.update_item("Item1", "latest")
    assert (result.outcome, result.version) == ("updated", UPDATES + 2)
    assert journal.read <= SNAPSHOT_EVERY
    assert verify(journal).checks[-1] == "state records: 1, each the fold of its stream's events"


def test_a_batch_on_hot_items_saves_records_and_agrees_with_single_commands() -> None:
    lines = [b'{"op":"create","id":"H%d","description":"0"}' % i for i in range(3)]
    lines += [b'{"op":"update","id":"H%d","description":"%d"}' % (n % 3, n) for n in range(2500)]
    batched = MemoryJournal()
    summary = CommandService(journal=batched).apply(parse_lines(lines))
    assert summary.commands == len(lines)
    single = MemoryJournal()
    service = CommandService(journal=single)
    for command in parse_lines(lines):
        service.execute(command.command)
    for item_id in ("H0", "H1", "H2"):
        record = batched.read_state(item_id)
        assert record is not None and record.version > 800
        mine = [(e.stream_version, e.data) for e in batched.read_stream(item_id)]
        assert mine == [(e.stream_version, e.data) for e in single.read_stream(item_id)]
    verify(batched)


# --- A record never changes an answer ---------------------------------------------------------


def damage(path: Path, how: str) -> None:
    """Change Item1's state record in the journal file behind cqrs's back."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if how == "deleted":
            conn.execute("DELETE FROM stream_states")
        elif how == "garbage":
            conn.execute("UPDATE stream_states SET data = 'not json'")
        elif how == "other-state-bad-checksum":
            data = encode_state(ItemState(1, True, "forged"))
            conn.execute("UPDATE stream_states SET data = ?", (data,))
        elif how == "version-ahead":
            conn.execute("UPDATE stream_states SET version = version + 1000")
        elif how == "hash-of-another-event":
            conn.execute("UPDATE stream_states SET hash = 'ab' || substr(hash, 3)")
        elif how == "table-dropped":
            conn.execute("DROP TABLE stream_states")
        else:  # pragma: no cover
            raise AssertionError(how)
    finally:
        conn.close()


DAMAGE = [
    "deleted",
    "garbage",
    "other-state-bad-checksum",
    "version-ahead",
    "hash-of-another-event",
    "table-dropped",
]


@pytest.mark.parametrize("how", DAMAGE)
def test_a_damaged_record_gives_the_answers_of_no_record(
    tmp_path: Path, cli: InProcessCli, how: str
) -> None:
    store = tmp_path / "store"
    long_item(CommandService(str(store)))
    damage(store / "journal.db", how)
    service = CommandService(str(store))
    # The current description: unchanged, whatever the record says.
    assert service.update_item("Item1", f"v{UPDATES}").outcome == "unchanged"
    assert service.update_item("Item1", "next").version == UPDATES + 2
    # A batch decides the same.
    result = service.apply(parse_lines([b'{"op":"update","id":"Item1","description":"next"}']))
    assert result.outcomes == {"unchanged": 1}
    service.close()
    if how != "table-dropped":
        assert cli("--journal", str(store / "journal.db"), "journal", "verify").code == 0


def test_verify_catches_a_well_formed_record_that_is_not_the_fold(
    tmp_path: Path, cli: InProcessCli
) -> None:
    store = tmp_path / "store"
    long_item(CommandService(str(store)))
    journal = open_journal(str(store / "journal.db"))
    try:
        record = journal.read_state("Item1")
        assert record is not None
        forged = StateRecord("Item1", record.version, record.hash, encode_state(ItemState()))
        with journal.batch() as batch:
            batch.save_state(forged)
        with pytest.raises(JournalFault, match="is not the fold of its events"):
            verify(journal)
    finally:
        journal.close()
    result = cli("--journal", str(store / "journal.db"), "journal", "verify")
    assert result.code == 7
    line = one_error_line(result.err)
    assert f"at position {record.version}" in line and "state record of stream 'Item1'" in line


def test_a_version_1_journal_is_read_as_it_is_and_upgraded_by_its_first_write(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    long_item(CommandService(str(store)), updates=3)
    path = store / "journal.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE stream_states")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    reader = find_journal(str(path))
    assert reader is not None
    assert (reader.read_state("Item1"), reader.state_records()) == (None, [])
    reader.close()
    assert CommandService(str(store)).update_item("Item1", "v4").version == 5
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM stream_states").fetchone()[0] == 0
    conn.close()
