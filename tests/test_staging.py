"""The copy of a journal without a file into a temporary one, for a build in SQL
(sync/staging.py): every event up to the head read when it starts, in order, as the
columns a build reads; a thread reads ahead, and whatever stops the copy (the journal
failing, an interrupt) stops that thread and leaves no file behind."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from cqrs_cli.errors import UnavailableError
from cqrs_cli.journal.memory_journal import MemoryJournal
from cqrs_cli.journal.records import BUILD_COLUMNS, AppendMetadata, NewEvent, build_rows
from cqrs_cli.sync import staging

EVENTS = 2_345


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> MemoryJournal:
    """EVENTS events over 100 streams; pages of 100, so the copy takes many."""
    monkeypatch.setattr(staging, "PAGE", 100)
    journal = MemoryJournal()
    with journal.batch() as batch:
        for n in range(EVENTS):
            stream = f"s{n % 100}"
            version = batch.stream_version(stream)
            event = NewEvent(f"e{n}", "ItemCreated" if version == 0 else "ItemUpdated", 1, "{}")
            batch.append(stream, version, [event], AppendMetadata("t", f"c{n}"))
    return journal


def _staged_rows(path: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {', '.join(BUILD_COLUMNS)} FROM events ORDER BY 1").fetchall()
    finally:
        conn.close()


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if "staged" in p.name]


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cqrs-staging"]


def test_every_event_up_to_the_head_is_copied_in_order(
    journal: MemoryJournal, tmp_path: Path
) -> None:
    seen: list[int] = []
    staged = staging.stage(journal, str(tmp_path), seen.append)
    try:
        assert staged.head == EVENTS
        assert _staged_rows(staged.path) == build_rows(journal.read_all(0, EVENTS), EVENTS)
        assert seen == sorted(seen) and seen[-1] == EVENTS and len(seen) > 10
    finally:
        staged.remove()
    assert _leftovers(tmp_path) == []
    assert _readers() == []


def test_events_after_the_head_read_at_the_start_are_left_to_the_next_catch_up(
    journal: MemoryJournal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "head", lambda: 1_000)
    staged = staging.stage(journal, str(tmp_path))
    try:
        rows = _staged_rows(staged.path)
        assert [row[0] for row in rows] == list(range(1, 1_001))
    finally:
        staged.remove()


def test_a_journal_failing_midway_raises_its_error_and_leaves_nothing(
    journal: MemoryJournal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = journal.read_for_build
    calls = iter(range(1_000))

    def failing(after: int, up_to: int, limit: int) -> list[tuple[object, ...]]:
        if next(calls) == 5:
            raise UnavailableError("the server went away")
        return real(after, up_to, limit)

    monkeypatch.setattr(journal, "read_for_build", failing)
    with pytest.raises(UnavailableError, match="went away"):
        staging.stage(journal, str(tmp_path))
    assert _leftovers(tmp_path) == []
    assert _readers() == []


def test_an_interrupt_while_copying_stops_the_reading_thread(
    journal: MemoryJournal, tmp_path: Path
) -> None:
    def interrupted(copied: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        staging.stage(journal, str(tmp_path), interrupted)
    assert _leftovers(tmp_path) == []
    assert _readers() == []
