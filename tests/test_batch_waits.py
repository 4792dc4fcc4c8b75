"""A write started while a long batch holds the journal waits for the batch and says so,
instead of failing as busy; any other lock held past the busy timeout is still busy
(exit 6: tests/test_reliability_faults.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from common import child_env, event_count, run_cqrs

# Holds the journal's write lock for about `seconds`, writing a round every 0.1 s, as a
# long `cqrs apply` does; prints "holding" once it has the lock.
LONG_BATCH = r"""
import sys, time
from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.locator import open_journal
from cqrs_cli.journal.records import AppendMetadata, NewEvent

path, seconds = sys.argv[1], float(sys.argv[2])
journal = open_journal(path)
with journal.batch() as batch:
    print("holding", flush=True)
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        stream = f"batch-{n}"
        batch.read_streams([stream])  # a new round: the last one goes into the log
        event = NewEvent(new_uuid(), "ItemCreated", 1, '{"description":"' + "x" * 4000 + '"}')
        batch.append(stream, 0, [event], AppendMetadata("2024-01-01T00:00:00.000000Z", new_uuid()))
        n += 1
        time.sleep(0.1)
journal.close()
"""


def test_a_write_waits_for_a_long_batch_and_says_so(cqrs_exe: str, store: Path) -> None:
    assert run_cqrs(cqrs_exe, "item", "create", "first").returncode == 0
    journal = store / "journal.db"
    batch = subprocess.Popen(
        [sys.executable, "-c", LONG_BATCH, str(journal), "3"],
        stdout=subprocess.PIPE,
        env=child_env(),
    )
    assert batch.stdout is not None and batch.stdout.readline() == b"holding\n"
    began = time.monotonic()
    # A busy timeout of 0.5 s: six of them pass while the batch runs.
    result = run_cqrs(cqrs_exe, "item", "create", "waiting", env=child_env(CQRS_BUSY_TIMEOUT="0.5"))
    waited = time.monotonic() - began
    assert batch.wait(timeout=60) == 0
    assert result.returncode == 0, result.stderr
    assert b"is held by a batch (cqrs apply); waiting for it to finish" in result.stderr
    assert result.stderr.count(b"waiting for it to finish") == 1
    assert waited > 1.0  # it did wait for the batch, past two busy timeouts
    assert event_count(journal) > 3
