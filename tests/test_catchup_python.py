"""The catch-up after writes from Python: the seed's example runs as written, a program
reads its own writes (session consistency), other processes see them eventually, and
catch_up=False or CQRS_CATCHUP=0 turn it all off."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from catchup_helpers import SEED_COMMANDS, SEED_EVENTUAL, SEED_IMPORT, checkpoint, wait_caught_up
from common import SUBPROCESS_TIMEOUT, child_env
from projection_helpers import assert_projection_is_exact

from cqrs_cli import CommandService, QueryService
from cqrs_cli.sync import session
from cqrs_cli.sync.catchup_state import log_path, status


def run_python(code: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=child_env(home, **env),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )


def test_the_seed_example_runs_as_written_against_a_fresh_default_home(store: Path) -> None:
    # CQRS_HOME names a new folder (conftest.py): the default home of this test. The
    # catch-up is on, as for anyone who has not turned it off.
    env = {"CQRS_CATCHUP": "1"}
    result = run_python(SEED_IMPORT + SEED_COMMANDS + SEED_EVENTUAL, store, **env)
    assert result.stderr == ""
    assert result.returncode == 0
    assert result.stdout == "Item1: Updated Description\n['Item1']\nItem2: \n"


def test_each_seed_snippet_runs_alone_in_its_own_process(store: Path) -> None:
    first = run_python(SEED_IMPORT + SEED_COMMANDS, store, CQRS_CATCHUP="1")
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout == "Item1: Updated Description\n['Item1']\n"
    second = run_python(SEED_IMPORT + SEED_EVENTUAL, store, CQRS_CATCHUP="1")
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout == "Item2: \n"
    # Each process, when it ended, had left the projection complete.
    assert wait_caught_up(store, timeout=0) is not None


def test_the_readme_shows_the_seed_code_unchanged() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert SEED_IMPORT + "\n" + SEED_COMMANDS in readme
    assert SEED_EVENTUAL in readme


@pytest.mark.usefixtures("catch_up")
def test_a_program_reads_each_of_its_writes_at_once(store: Path) -> None:
    commands, queries = CommandService(store), QueryService(store)
    for n in range(30):
        commands.create_item(f"item-{n:02}", f"text {n}")
        # Read right after writing: the query waits for this process's catch-up.
        assert str(queries.get_item(f"item-{n:02}")) == f"item-{n:02}: text {n}"
        commands.update_item(f"item-{n:02}", f"changed {n}")
        assert queries.get_item(f"item-{n:02}").description == f"changed {n}"
    assert queries.list_all_items() == [f"item-{n:02}" for n in range(30)]


@pytest.mark.usefixtures("catch_up")
def test_another_process_sees_the_writes_eventually_without_any_sync(store: Path) -> None:
    CommandService(store).create_item("Item1", "from this process")
    # No sync call anywhere: the other process only reads, a moment later.
    code = (
        "import time; from cqrs_cli import QueryService\n"
        "time.sleep(1)\n"
        "print(QueryService().get_item('Item1'))\n"
    )
    result = run_python(code, store)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "Item1: from this process\n"


def test_catch_up_false_leaves_the_projection_to_sync(store: Path) -> None:
    CommandService(store, catch_up=False).create_item("Item1")
    time.sleep(0.3)
    assert not (store / "projection.db").exists()
    # Nothing to wait for either: the read answers at once, from no projection yet.
    started = time.monotonic()
    with pytest.raises(Exception, match="no projection yet"):
        QueryService(store).get_item("Item1")
    assert time.monotonic() - started < 1


def test_the_environment_variable_turns_it_off_for_python_programs(store: Path) -> None:
    code = SEED_IMPORT + "CommandService().create_item('Item1'); print('written')\n"
    result = run_python(code, store, CQRS_CATCHUP="0")
    assert (result.returncode, result.stdout) == (0, "written\n")
    assert not (store / "projection.db").exists()
    assert not list(store.glob("*catchup*"))


@pytest.mark.usefixtures("catch_up")
def test_writes_from_many_threads_leave_an_exact_projection(store: Path, tmp_path: Path) -> None:
    def writer(n: int) -> None:
        service = CommandService(store)
        for i in range(25):
            service.create_item(f"t{n}-{i}", f"x{i}")
            if i % 3 == 0:
                service.update_item(f"t{n}-{i}", f"y{i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.wait_for_catch_ups(30.0)
    assert wait_caught_up(store, timeout=0) is not None
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)
    assert status(str(store / "projection.db")).last_outcome == "ok"


@pytest.mark.usefixtures("catch_up")
def test_a_failed_catch_up_is_logged_and_reads_stop_waiting_for_it(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = CommandService(store)
    commands.create_item("Item1")
    assert session.wait_for_catch_ups(30.0)
    # Another sync holds the projection's write lock past the sync timeout: the next
    # catch-up fails as busy.
    monkeypatch.setenv("CQRS_SYNC_TIMEOUT", "0.2")
    import sqlite3

    holder = sqlite3.connect(store / "projection.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        commands.create_item("Item2")
        assert session.wait_for_catch_ups(30.0)
        started = time.monotonic()
        notes: list[str] = []
        from cqrs_cli import notices

        notices.set_handler(notes.append)
        try:
            queries = QueryService(store)
            assert queries.list_all_items() == ["Item1"]  # answered from what it has
        finally:
            notices.set_handler(None)
        assert time.monotonic() - started < 2  # not the whole session timeout (5 s)
        assert len(notes) == 1 and "not 2" in notes[0], notes
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    lines = Path(log_path(str(store / "projection.db"))).read_text().splitlines()
    assert len(lines) == 1
    assert "catch-up of" in lines[0] and "failed" in lines[0]
    state = status(str(store / "projection.db"))
    assert (state.last_outcome, state.running) == ("failed", False)
    # The next write's catch-up succeeds, and the projection is complete again.
    monkeypatch.delenv("CQRS_SYNC_TIMEOUT")
    commands.create_item("Item3")
    assert session.wait_for_catch_ups(30.0)
    assert checkpoint(store / "projection.db") == 3
    assert status(str(store / "projection.db")).last_outcome == "ok"


@pytest.mark.usefixtures("catch_up")
def test_a_write_for_which_no_thread_can_be_started_stands_and_frees_the_lock(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    commands = CommandService(store)
    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", refuse)
        result = commands.create_item("Item1")
    assert (result.outcome, result.position) == ("created", 1)
    # The lock was given back: the next write's catch-up runs.
    commands.create_item("Item2")
    assert session.wait_for_catch_ups(30.0)
    assert checkpoint(store / "projection.db") == 2
