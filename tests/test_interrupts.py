"""Ctrl-C (SIGINT) or SIGTERM during a long command: it says on stderr, in one line, what
it committed and where a re-run resumes, and exits 130; an interrupt that arrives once
the work is committed is too late to stop it, and the command succeeds (exit 0).

Deterministic cases use the test-only hook CQRS_TEST_CRASH_AT=POINT:N:INT (or :TERM),
which makes the command send itself the signal the Nth time it reaches POINT; the
others send a real signal to a command that is reading or working."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from common import (
    SUBPROCESS_TIMEOUT,
    InProcessCli,
    child_env,
    default_sigint,
    event_count,
    ndjson,
    run_cqrs,
    wait_until,
)
from projection_helpers import checkpoint_of, dump_projection, write_random_events

INTERRUPTED = "cqrs: interrupted: "


def one_interrupt_line(err: str) -> str:
    """stderr is exactly one `cqrs: interrupted: ...` line, no traceback; its text."""
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.endswith("\n"), repr(err)
    assert err.startswith(INTERRUPTED), repr(err)
    return err[len(INTERRUPTED) : -1]


def creates(count: int, first: int = 0) -> bytes:
    return ndjson(*({"op": "create", "id": f"I{n}"} for n in range(first, first + count)))


def hooked(
    exe: str, point: str, *argv: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    """`cqrs ARGV` that interrupts itself at `point` (POINT:N:INT or :TERM)."""
    env = child_env(CQRS_TEST_CRASH_AT=point)
    return run_cqrs(exe, *argv, stdin=stdin, env=env, preexec_fn=default_sigint, text=True)


def spawn(exe: str, *argv: str, stdin: int | None = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [exe, *argv],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        preexec_fn=default_sigint,
    )


# --- cqrs apply ---------------------------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_batch_writes_nothing_and_says_so(
    store: Path, cqrs_exe: str, tmp_path: Path, stop: signal.Signals
) -> None:
    # A batch read from a pipe that stays open: the command is mid-batch for sure.
    batch = spawn(cqrs_exe, "apply")
    assert batch.stdin is not None
    batch.stdin.write(creates(2500).decode())
    batch.stdin.flush()
    # A first batch builds the journal under a temporary name, linked into place at the
    # commit: it is under way once that file is there.
    assert wait_until(lambda: bool(list(store.glob("journal.db.new-*"))))
    time.sleep(0.5)  # the first rounds are decided (not committed)
    batch.send_signal(stop)
    out, err = batch.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert batch.returncode == 130
    assert out == ""
    assert one_interrupt_line(err) == (
        "the batch is one transaction and was rolled back: nothing was written; "
        "re-run the same command"
    )
    assert list(store.iterdir()) == []  # no journal, no temporary file


def test_an_interrupt_once_the_batch_is_read_comes_after_its_commit(
    store: Path, cqrs_exe: str
) -> None:
    done = hooked(cqrs_exe, "apply-commit:1:INT", "apply", stdin=creates(1500))
    assert done.returncode == 0, done.stderr
    assert done.stderr == "Applied 1500 commands: 1500 created (journal position 1 -> 1500)\n"
    assert event_count(store / "journal.db") == 1500


def test_an_interrupt_after_the_commit_still_prints_the_results_or_says_it_did_not(
    store: Path, cqrs_exe: str
) -> None:
    done = hooked(cqrs_exe, "apply-commit:1:TERM", "apply", "--json", stdin=creates(30))
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "Applied 30 commands: 30 created (journal position 1 -> 30) "
        "(interrupted: not every result was printed)\n"
    )
    assert event_count(store / "journal.db") == 30


def test_each_interrupted_says_after_which_line_it_stopped(store: Path, cqrs_exe: str) -> None:
    stopped = hooked(cqrs_exe, "apply-line:50:INT", "apply", "--each", stdin=creates(200))
    assert stopped.returncode == 130
    assert one_interrupt_line(stopped.stderr) == (
        "after line 50: Applied 50 commands: 50 created (journal position 1 -> 50); "
        "each line is its own transaction: re-run with the lines after 50, or the same "
        "file if it uses keys"
    )
    assert event_count(store / "journal.db") == 50
    # Resuming with the lines after 50 gives the whole file, each line once.
    resumed = run_cqrs(cqrs_exe, "apply", "--each", stdin=creates(150, first=50), text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert event_count(store / "journal.db") == 200


def test_each_waiting_for_input_stops_at_once_after_the_last_line_it_applied(
    store: Path, cqrs_exe: str
) -> None:
    batch = spawn(cqrs_exe, "apply", "--each", "--json")
    assert batch.stdin is not None and batch.stdout is not None
    batch.stdin.write(creates(10).decode() + "\n")  # a blank line 11 is counted too
    batch.stdin.flush()
    for line in range(1, 11):
        assert json.loads(batch.stdout.readline())["line"] == line
    time.sleep(0.2)  # reading line 12, which does not come
    batch.send_signal(signal.SIGINT)
    _, err = batch.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert batch.returncode == 130
    assert one_interrupt_line(err).startswith(
        "after line 11: Applied 10 commands: 10 created (journal position 1 -> 10); "
    )
    assert event_count(store / "journal.db") == 10


def test_each_interrupted_before_any_line_says_nothing_was_applied(
    store: Path, cqrs_exe: str
) -> None:
    batch = spawn(cqrs_exe, "apply", "--each")
    time.sleep(0.5)
    batch.send_signal(signal.SIGINT)
    out, err = batch.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert (batch.returncode, out) == (130, "")
    assert one_interrupt_line(err) == "no line was applied; re-run the same command"
    assert event_count(store / "journal.db") == 0


def test_apply_sync_interrupted_in_its_sync_says_the_batch_stands(
    store: Path, cqrs_exe: str
) -> None:
    stopped = hooked(cqrs_exe, "rebuild-mid:1:INT", "apply", "--sync", stdin=creates(20))
    assert stopped.returncode == 130
    assert one_interrupt_line(stopped.stderr.split("\n", 1)[1]) == (
        "the batch was committed (Applied 20 commands: 20 created (journal position 1 -> "
        "20)); the sync stopped: the first sync is one transaction and was rolled back: "
        "nothing was committed, the projection is as it was; re-run cqrs sync"
    )
    assert stopped.stderr.startswith("Applied 20 commands")
    assert event_count(store / "journal.db") == 20
    assert checkpoint_of(store / "projection.db") == 0


# --- cqrs sync ----------------------------------------------------------------------------


def test_a_first_sync_interrupted_commits_nothing(store: Path, cqrs_exe: str) -> None:
    write_random_events(store / "journal.db", 300, items=30, seed=1)
    stopped = hooked(cqrs_exe, "rebuild-mid:2:INT", "sync", "--batch-size", "50")
    assert stopped.returncode == 130
    assert stopped.stdout == ""
    assert one_interrupt_line(stopped.stderr) == (
        "the first sync is one transaction and was rolled back: nothing was committed, "
        "the projection is as it was; re-run the same command"
    )
    assert checkpoint_of(store / "projection.db") == 0
    resumed = run_cqrs(cqrs_exe, "sync", text=True)
    assert resumed.stdout == "Synced 300 events (position 0 -> 300)\n"


@pytest.mark.parametrize("stop", ["INT", "TERM"])
def test_a_first_sync_interrupted_once_committed_succeeds(
    store: Path, cqrs_exe: str, stop: str
) -> None:
    write_random_events(store / "journal.db", 300, items=30, seed=1)
    done = hooked(cqrs_exe, f"rebuild-just-committed:1:{stop}", "sync")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Synced 300 events (position 0 -> 300)\n"
    assert done.stderr == ""
    assert checkpoint_of(store / "projection.db") == 300


def test_a_rebuild_interrupted_leaves_the_projection_as_it_was(store: Path, cqrs_exe: str) -> None:
    write_random_events(store / "journal.db", 300, items=30, seed=1)
    assert run_cqrs(cqrs_exe, "sync", text=True).returncode == 0
    before = dump_projection(store / "projection.db")
    stopped = hooked(cqrs_exe, "rebuild-before-commit:1:TERM", "sync", "--rebuild")
    assert stopped.returncode == 130
    assert one_interrupt_line(stopped.stderr) == (
        "the rebuild is one transaction and was rolled back: nothing was committed, "
        "the projection is as it was; re-run the same command"
    )
    assert dump_projection(store / "projection.db") == before


@pytest.mark.parametrize(
    ("point", "end"),
    [
        ("mid-batch:3:INT", 150),  # batches 1 and 2 committed, the third rolled back
        ("before-commit:2:TERM", 100),
        ("just-committed:2:INT", 150),  # COMMIT returned: that batch counts
        ("after-commit:3:INT", 200),
    ],
)
def test_an_interrupted_catch_up_reports_its_committed_batches_and_where_to_resume(
    store: Path, cqrs_exe: str, point: str, end: int
) -> None:
    write_random_events(store / "journal.db", 50, items=40, seed=1)
    assert run_cqrs(cqrs_exe, "sync", text=True).returncode == 0
    write_random_events(store / "journal.db", 450, items=40, seed=2)
    stopped = hooked(cqrs_exe, point, "sync", "--batch-size", "50")
    assert stopped.returncode == 130
    summary = f"Synced {end - 50} events (position 50 -> {end})"
    assert stopped.stdout == summary + "\n"
    assert one_interrupt_line(stopped.stderr) == f"{summary}; a re-run resumes from {end}"
    assert checkpoint_of(store / "projection.db") == end
    resumed = run_cqrs(cqrs_exe, "sync", text=True)
    assert resumed.stdout == f"Synced {500 - end} events (position {end} -> 500)\n"


def test_a_first_sync_interrupted_at_any_moment_says_what_it_did(
    store: Path, cqrs_exe: str
) -> None:
    """A real Ctrl-C at a moment of the clock's choosing: either nothing is committed
    and it says so (130), or everything is and it succeeds (0); never in between."""
    write_random_events(store / "journal.db", 20000, items=2000, seed=3)
    projection = store / "projection.db"
    for delay in (0.0, 0.1, 0.3):
        for leftover in store.glob("projection.db*"):
            leftover.unlink()
        sync = spawn(cqrs_exe, "sync", stdin=subprocess.DEVNULL)
        assert wait_until(projection.exists)  # it has started
        time.sleep(delay)
        sync.send_signal(signal.SIGINT)
        out, err = sync.communicate(timeout=SUBPROCESS_TIMEOUT)
        reached = checkpoint_of(projection)
        if sync.returncode == 0:
            assert out == "Synced 20000 events (position 0 -> 20000)\n"
            assert reached == 20000
        else:
            assert sync.returncode == 130, err
            assert out == ""
            assert one_interrupt_line(err).startswith("the first sync is one transaction")
            assert reached == 0


# --- cqrs journal import ------------------------------------------------------------------


def test_an_interrupted_import_creates_no_journal(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    write_random_events(store / "journal.db", 100, items=10, seed=1)
    export = run_cqrs(cqrs_exe, "journal", "export", text=True).stdout.splitlines(keepends=True)
    target = tmp_path / "restored" / "journal.db"
    target.parent.mkdir()
    importer = spawn(cqrs_exe, "--journal", str(target), "journal", "import")
    assert importer.stdin is not None
    importer.stdin.write("".join(export[:-1]))  # everything but the trailer: it waits
    importer.stdin.flush()
    time.sleep(0.5)
    importer.send_signal(signal.SIGINT)
    out, err = importer.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert (importer.returncode, out) == (130, "")
    assert one_interrupt_line(err) == (
        "no journal was created (an import is all or nothing); re-run the same command"
    )
    assert list(target.parent.iterdir()) == []


# --- The process around the command -------------------------------------------------------


def test_commands_that_catch_interrupts_give_the_signals_back_as_they_found_them(
    store: Path, cli: InProcessCli
) -> None:
    """Run inside another program (here the test runner), `sync`, `apply` and `journal
    import` leave SIGINT and SIGTERM as they were: an ignored signal would outlive the
    command and be inherited by every process the program starts."""
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert cli("item", "create", "Item1").code == 0
    assert cli("apply", "-", stdin=b'{"op": "create", "id": "Item2"}\n').code == 0
    assert cli("sync").code == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
