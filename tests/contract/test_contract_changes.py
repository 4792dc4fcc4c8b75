"""The journal contract, change notice (journal/base.py, "Change notice"):
`wait_for_change(after, timeout)` is True as soon as the head is above `after`, whoever
committed, and False after `timeout` otherwise. Every test runs against every backend
(tests/journal_backends.py).

No timing is asserted beyond generous bounds: a wait that should end at once or at a
commit is given a 30 s timeout and must end within a few seconds.
"""

from __future__ import annotations

import threading
import time

from journal_backends import Backend, backend, journal

from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.base import Journal
from cqrs_cli.journal.batching import append_once
from cqrs_cli.journal.records import AppendMetadata, NewEvent

__all__ = ["backend", "journal"]  # the fixtures, imported for pytest

LONG = 30.0
"""A timeout the tests never expect to reach."""
PROMPT = 5.0
"""What "at once" or "at the commit" must take at most, on the slowest machine."""


def append(journal: Journal, stream_id: str) -> int:
    """One more event on `stream_id`; its position."""
    version = len(journal.read_stream(stream_id))
    kind = "ItemCreated" if version == 0 else "ItemUpdated"
    event = NewEvent(new_uuid(), kind, 1, '{"description":"x"}')
    metadata = AppendMetadata("2024-01-01T00:00:00.000000Z", new_uuid())
    return append_once(journal, stream_id, version, [event], metadata).events[-1].position


def timed_wait(journal: Journal, after: int, timeout: float) -> tuple[bool, float]:
    start = time.monotonic()
    changed = journal.wait_for_change(after, timeout)
    return changed, time.monotonic() - start


def test_a_head_already_past_returns_true_at_once(journal: Journal) -> None:
    first = append(journal, "A")
    append(journal, "A")
    for after in (0, first):
        changed, took = timed_wait(journal, after, LONG)
        assert changed and took < PROMPT


def test_nothing_new_waits_out_the_timeout_and_returns_false(journal: Journal) -> None:
    assert timed_wait(journal, 0, 0.05)[0] is False  # an empty journal
    head = append(journal, "A")
    changed, took = timed_wait(journal, head, 0.3)
    assert changed is False
    assert 0.3 <= took < PROMPT
    assert journal.wait_for_change(head - 1, LONG) is True


def test_a_commit_by_another_handle_ends_the_wait(journal: Journal, backend: Backend) -> None:
    head = append(journal, "A")
    other = backend.another_handle(journal)
    result: list[tuple[bool, float]] = []
    waiter = threading.Thread(target=lambda: result.append(timed_wait(journal, head, LONG)))
    waiter.start()
    time.sleep(0.1)  # the waiter is waiting (if not yet, it finds the head past at once)
    committed = append(other, "B")
    waiter.join(LONG + 5)
    assert not waiter.is_alive()
    ((changed, took),) = result
    assert changed and took < PROMPT
    assert journal.head() == committed


def test_a_commit_through_the_same_handle_ends_the_wait(journal: Journal) -> None:
    """Another thread of this process commits through the very handle that waits (a
    SQLite connection's own commits leave its PRAGMA data_version unchanged)."""
    head = append(journal, "A")
    result: list[tuple[bool, float]] = []
    waiter = threading.Thread(target=lambda: result.append(timed_wait(journal, head, LONG)))
    waiter.start()
    time.sleep(0.1)
    append(journal, "A")
    waiter.join(LONG + 5)
    assert not waiter.is_alive()
    ((changed, took),) = result
    assert changed and took < PROMPT


def test_a_batch_that_fails_is_no_change(journal: Journal, backend: Backend) -> None:
    head = append(journal, "A")
    other = backend.another_handle(journal)
    try:
        with other.batch() as batch:
            batch.stream_version("B")
            event = NewEvent(new_uuid(), "ItemCreated", 1, '{"description":"x"}')
            batch.append("B", 0, [event], AppendMetadata("2024-01-01T00:00:00.000000Z", "c"))
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert journal.wait_for_change(head, 0.2) is False
    backend.assert_lock_free(journal)  # the wait left nothing open either
