"""The SQLite journal file: its columns, append-only triggers, file marking, refusing files
that are not a journal, permissions, busy. What every backend must do (appends,
optimistic concurrency, idempotency, the hash chain) is in tests/contract/."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from journal_backends import RECORDED_AT, append, new_event

from cqrs_cli.errors import BusyError, StorageError
from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.batching import append_once
from cqrs_cli.journal.chain import GENESIS, event_hash
from cqrs_cli.journal.records import AppendMetadata, RecordedEvent
from cqrs_cli.journal.sqlite_journal import SqliteJournal
from cqrs_cli.sqlitefile import JOURNAL_APP_ID, PROJECTION_APP_ID


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "journal.db"


@pytest.fixture
def journal(journal_path: Path) -> Iterator[SqliteJournal]:
    opened = SqliteJournal.open(str(journal_path))
    yield opened
    opened.close()


def read_everything(journal: SqliteJournal) -> list[RecordedEvent]:
    events: list[RecordedEvent] = []
    while batch := journal.read_all(after=events[-1].position if events else 0, limit=7):
        events += batch
    return events


def raw_connection(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def folder_snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry of `folder` with its bytes (None for a folder): equal snapshots mean
    nothing was changed, and no -wal, -shm or temporary file appeared."""
    return {
        entry.name: None if entry.is_dir() else entry.read_bytes()
        for entry in sorted(folder.iterdir())
    }


# --- Appending and reading -------------------------------------------------------------------


def test_recorded_event_fields_are_the_journal_columns_in_order(journal: SqliteJournal) -> None:
    # RecordedEvent is typed for mypy separately from the class made at run time (see
    # records.py): both must name the journal's columns, in the table's order.
    from cqrs_cli.journal.records import COLUMNS

    assert RecordedEvent._fields == COLUMNS
    columns = [
        row[1] for row in raw_connection(Path(journal.path)).execute("PRAGMA table_info(events)")
    ]
    assert tuple(columns) == COLUMNS
    (event,) = append(journal, "Item1", 0).events
    assert [getattr(event, name) for name in COLUMNS] == list(event)


# --- Append-only -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        'UPDATE events SET data = \'{"description":"forged"}\' WHERE position = 1',
        "DELETE FROM events WHERE position = 1",
        "DELETE FROM events",
        "UPDATE journal_meta SET value = 'other' WHERE key = 'journal_id'",
        "DELETE FROM journal_meta",
    ],
)
def test_stored_events_and_metadata_cannot_be_changed_or_deleted(
    journal: SqliteJournal, journal_path: Path, statement: str
) -> None:
    append(journal, "Item1", 0)
    before = read_everything(journal)
    journal_id = journal.journal_id
    conn = raw_connection(journal_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="cannot be"):
            conn.execute(statement)
    finally:
        conn.close()
    assert read_everything(journal) == before
    reopened = SqliteJournal.open(str(journal_path))
    assert reopened.journal_id == journal_id
    reopened.close()


# --- The hash chain --------------------------------------------------------------------------


def test_changing_any_field_changes_the_hash() -> None:
    fields: list[Any] = [
        GENESIS,
        "id",
        "s",
        1,
        "ItemCreated",
        1,
        "{}",
        RECORDED_AT,
        "c",
        None,
        None,
    ]
    base = event_hash(*fields)
    for index, value in enumerate(fields):
        changed = list(fields)
        changed[index] = value + 1 if isinstance(value, int) else "other"
        assert event_hash(*changed) != base, f"field {index} is not covered"
    # Moving text from one field into the next is a different event, with another hash.
    shifted = list(fields)
    shifted[1:3] = ["i", "ds"]
    assert event_hash(*shifted) != base


# --- Marking the file ------------------------------------------------------------------------


def test_the_file_is_marked_as_a_wal_mode_cqrs_journal(
    journal: SqliteJournal, journal_path: Path
) -> None:
    conn = raw_connection(journal_path)
    try:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == JOURNAL_APP_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT key, value FROM journal_meta").fetchall()
    finally:
        conn.close()
    assert [key for key, _ in rows] == ["journal_id"]
    assert uuid.UUID(rows[0][1]).version == 7  # time-ordered (cqrs_cli.ids)
    assert journal.journal_id == rows[0][1]


def test_the_journal_id_is_kept_on_reopening_and_differs_between_journals(
    tmp_path: Path,
) -> None:
    first = SqliteJournal.open(str(tmp_path / "a.db"))
    journal_id = first.journal_id
    first.close()
    again = SqliteJournal.open(str(tmp_path / "a.db"))
    other = SqliteJournal.open(str(tmp_path / "b.db"))
    assert again.journal_id == journal_id
    assert other.journal_id != journal_id
    again.close()
    other.close()


def test_creating_leaves_no_temporary_files(journal_path: Path) -> None:
    SqliteJournal.open(str(journal_path)).close()
    assert sorted(os.listdir(journal_path.parent)) == ["journal.db"]


def test_a_missing_journal_is_not_created_when_asked_not_to(journal_path: Path) -> None:
    with pytest.raises(StorageError, match="no journal here"):
        SqliteJournal.open(str(journal_path), create=False)
    assert not journal_path.parent.exists()


def test_a_new_journal_is_readable_by_its_owner_only(journal_path: Path) -> None:
    old = os.umask(0o022)
    try:
        journal = SqliteJournal.open(str(journal_path))
        append(journal, "Item1", 0)  # the -wal and -shm files exist while it is open
        for name in os.listdir(journal_path.parent):
            mode = os.stat(journal_path.parent / name).st_mode & 0o777
            assert mode == 0o600, f"{name} has mode {mode:o}"
        journal.close()
    finally:
        os.umask(old)


# --- Refusing files that are not a journal ------------------------------------------------


def make_text_file(folder: Path) -> Path:
    path = folder / "notes.txt"
    path.write_text("not a database\n" * 100)
    return path


def make_empty_file(folder: Path) -> Path:
    path = folder / "empty.db"
    path.touch()
    return path


def make_directory(folder: Path) -> Path:
    path = folder / "a-folder.db"
    path.mkdir()
    (path / "inside").write_text("x")
    return path


def make_sqlite_file(folder: Path, name: str, application_id: int) -> Path:
    path = folder / name
    conn = raw_connection(path)
    conn.execute(f"PRAGMA application_id = {application_id}")
    conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, data TEXT)")
    conn.execute("INSERT INTO events (data) VALUES ('theirs')")
    conn.close()
    return path


def make_projection_file(folder: Path) -> Path:
    return make_sqlite_file(folder, "projection.db", PROJECTION_APP_ID)


def make_other_programs_file(folder: Path) -> Path:
    return make_sqlite_file(folder, "other.db", 0)


def make_journal_from_the_future(folder: Path) -> Path:
    path = folder / "future.db"
    journal = SqliteJournal.open(str(path))
    append(journal, "Item1", 0)
    journal.close()
    conn = raw_connection(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    return path


def make_truncated_journal(folder: Path) -> Path:
    path = folder / "truncated.db"
    journal = SqliteJournal.open(str(path))
    for n in range(60):
        append_once(
            journal, f"Item{n}", 0, [new_event("x" * 2000)], AppendMetadata(RECORDED_AT, new_uuid())
        )
    journal.close()
    content = path.read_bytes()
    page_size = int.from_bytes(content[16:18], "big")
    assert len(content) > 8 * page_size  # a real multi-page file
    path.write_bytes(content[: len(content) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (make_text_file, "not an SQLite database"),
        (make_empty_file, "empty file"),
        (make_directory, "is a directory"),
        (make_projection_file, "it is a cqrs projection"),
        (make_other_programs_file, "another program"),
        (make_journal_from_the_future, "schema version 99 is newer"),
        (make_truncated_journal, "truncated"),
    ],
    ids=lambda value: value.__name__.removeprefix("make_") if callable(value) else "",
)
def test_a_file_that_is_not_a_usable_journal_is_refused_and_left_untouched(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    path = make(folder)
    before = folder_snapshot(folder)
    inside = folder_snapshot(path) if path.is_dir() else None

    with pytest.raises(StorageError, match=reason) as caught:
        SqliteJournal.open(str(path))
    assert caught.value.exit_code == 7
    assert str(path) in str(caught.value)

    assert folder_snapshot(folder) == before
    if inside is not None:
        assert folder_snapshot(path) == inside


# --- Busy ------------------------------------------------------------------------------------


def test_an_append_blocked_past_the_busy_timeout_is_busy_and_writes_nothing(
    journal_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CQRS_BUSY_TIMEOUT", "0.2")
    journal = SqliteJournal.open(str(journal_path))
    append(journal, "Item1", 0)
    holder = raw_connection(journal_path)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(BusyError, match="locked") as caught:
            append(journal, "Item1", 1)
        assert caught.value.exit_code == 6
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [e.stream_version for e in journal.read_stream("Item1")] == [1]
    # Once the lock is gone the same journal object writes again.
    assert append(journal, "Item1", 1).events[0].stream_version == 2
    journal.close()
