"""Long commands report progress with a total: the first sync and --rebuild against the
journal's head, a catch-up against the events behind, apply and import of a FILE in
bytes of its size (of a stream: a count, no total), apply --sync the sync's own. Checked
through the progress callbacks, without a terminal; and without a terminal (or with
-q) nothing is drawn at all, while on one a bar with its total is."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from common import SUBPROCESS_TIMEOUT, InProcessCli, child_env, ndjson, run_cqrs
from projection_helpers import write_random_events

from cqrs_cli.cli import sync_command
from cqrs_cli.journal.memory_journal import MemoryJournal
from cqrs_cli.paths import StorePaths
from cqrs_cli.sync.runner import Syncer
from cqrs_cli.write.command_service import CommandService

Calls = list[tuple[int, int]]


def recorder() -> tuple[Calls, Callable[[int, int], None]]:
    calls: Calls = []
    return calls, lambda done, total: calls.append((done, total))


def assert_determinate(calls: Calls, total: int) -> None:
    """Every call knew the total, done never went back, and it ended at the total."""
    assert calls, "no progress was reported"
    assert {t for _, t in calls} == {total}, calls
    done = [d for d, _ in calls]
    assert done == sorted(done), calls
    assert done[0] >= 0 and done[-1] == total


def sync_with_progress(store: Path, *, rebuild: bool = False, **kwargs: object) -> Calls:
    calls, progress = recorder()
    with Syncer(StorePaths.coerce(store), progress=progress, **kwargs) as syncer:  # type: ignore[arg-type]
        syncer.run(rebuild=rebuild)
    return calls


def test_a_first_sync_reports_progress_against_the_journal_head(store: Path) -> None:
    write_random_events(store / "journal.db", 3000, items=200, seed=1)
    calls = sync_with_progress(store)
    assert_determinate(calls, 3000)
    assert len(calls) >= 4  # at the start, then view by view (one SQL statement each)


def test_a_rebuild_reports_progress_against_the_journal_head(store: Path) -> None:
    write_random_events(store / "journal.db", 2000, items=100, seed=1)
    sync_with_progress(store)
    assert_determinate(sync_with_progress(store, rebuild=True), 2000)


def test_a_replayed_build_reports_progress_batch_by_batch(store: Path) -> None:
    # A journal with no file of its own is replayed through every view, in batches.
    journal = MemoryJournal()
    with CommandService(journal=journal) as service:
        for n in range(300):
            service.create_item(f"I{n}")
    calls = sync_with_progress(store, journal=journal, batch_size=50)
    assert_determinate(calls, 300)
    assert len(calls) > 6  # each batch moves it


def test_a_catch_up_reports_progress_against_the_events_behind(store: Path) -> None:
    write_random_events(store / "journal.db", 100, items=50, seed=1)
    sync_with_progress(store)
    write_random_events(store / "journal.db", 400, items=50, seed=2)
    calls = sync_with_progress(store, batch_size=100)
    assert_determinate(calls, 400)
    assert len(calls) >= 5


@contextmanager
def recorded_bars(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[list[tuple[str, bool, Calls]]]:
    """Replace the commands' progress bar by a recorder: (description, in bytes,
    calls) of every bar a command asks for."""
    bars: list[tuple[str, bool, Calls]] = []

    def fake(
        description: str = "Syncing", *, wanted: bool = True, in_bytes: bool = False
    ) -> AbstractContextManager[Callable[[int, int], None] | None]:
        calls, progress = recorder()
        bars.append((description, in_bytes, calls))

        @contextmanager
        def bar() -> Iterator[Callable[[int, int], None] | None]:
            yield progress

        return bar()

    monkeypatch.setattr(sync_command, "progress_bar", fake)
    yield bars


def creates(count: int) -> bytes:
    return ndjson(*({"op": "create", "id": f"I{n}", "description": "x" * 40} for n in range(count)))


@pytest.mark.parametrize("each", [False, True])
def test_apply_of_a_file_reports_bytes_read_of_its_size(
    cli: InProcessCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, each: bool
) -> None:
    batch = tmp_path / "batch.ndjson"
    batch.write_bytes(creates(3500))
    with recorded_bars(monkeypatch) as bars:
        result = cli("apply", *(["--each"] if each else []), str(batch))
    assert result.code == 0, result.err
    ((description, in_bytes, calls),) = bars
    assert (description, in_bytes) == ("Applying", True)
    assert_determinate(calls, batch.stat().st_size)
    assert len(calls) >= 4  # every 1,000 lines, and the end


def test_apply_of_a_stream_counts_lines_without_a_total(
    cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recorded_bars(monkeypatch) as bars:
        result = cli("apply", stdin=creates(2500))
    assert result.code == 0, result.err
    ((_, in_bytes, calls),) = bars
    assert not in_bytes
    assert calls == [(1000, 0), (2000, 0)]


def test_apply_sync_shows_the_syncs_bar_and_prints_its_summary(
    cli: InProcessCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.ndjson"
    batch.write_bytes(creates(1200))
    with recorded_bars(monkeypatch) as bars:
        result = cli("apply", "--sync", str(batch))
    assert result.code == 0, result.err
    assert result.err == (
        "Applied 1200 commands: 1200 created (journal position 1 -> 1200)\n"
        "Synced 1200 events (position 0 -> 1200)\n"
    )
    assert [(d, b) for d, b, _ in bars] == [("Applying", True), ("Syncing", False)]
    assert_determinate(bars[1][2], 1200)


def test_apply_sync_quiet_prints_nothing(cli: InProcessCli) -> None:
    result = cli("-q", "apply", "--sync", stdin=creates(3))
    assert (result.code, result.err) == (0, "")


def test_import_of_a_file_reports_bytes_read_of_its_size(
    cli: InProcessCli, monkeypatch: pytest.MonkeyPatch, store: Path, tmp_path: Path
) -> None:
    write_random_events(store / "journal.db", 2500, items=100, seed=1)
    export = tmp_path / "export.ndjson"
    assert cli("journal", "export", str(export)).code == 0
    with recorded_bars(monkeypatch) as bars:
        result = cli("--journal", str(tmp_path / "restored.db"), "journal", "import", str(export))
    assert result.code == 0, result.err
    ((description, in_bytes, calls),) = bars
    assert (description, in_bytes) == ("Importing", True)
    assert_determinate(calls, export.stat().st_size)


def test_import_of_a_stream_counts_events_without_a_total(
    cli: InProcessCli, monkeypatch: pytest.MonkeyPatch, store: Path, tmp_path: Path
) -> None:
    write_random_events(store / "journal.db", 2500, items=100, seed=1)
    export = cli("journal", "export").out.encode()
    with recorded_bars(monkeypatch) as bars:
        result = cli("--journal", str(tmp_path / "restored.db"), "journal", "import", stdin=export)
    assert result.code == 0, result.err
    ((_, in_bytes, calls),) = bars
    assert not in_bytes
    assert calls == [(1000, 0), (2000, 0)]


# --- What reaches the terminal ------------------------------------------------------------


def test_without_a_terminal_no_bar_is_made(fresh_cli_state: None) -> None:
    # Under pytest stderr is captured: not a terminal.
    with sync_command.progress_bar("Syncing") as progress:
        assert progress is None


def test_without_a_terminal_nothing_but_the_summaries_is_written(
    store: Path, cqrs_exe: str, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.ndjson"
    batch.write_bytes(creates(2500))
    applied = run_cqrs(cqrs_exe, "apply", "--sync", str(batch), text=True)
    assert applied.stderr == (
        "Applied 2500 commands: 2500 created (journal position 1 -> 2500)\n"
        "Synced 2500 events (position 0 -> 2500)\n"
    )
    rebuilt = run_cqrs(cqrs_exe, "sync", "--rebuild", text=True)
    assert (rebuilt.stdout, rebuilt.stderr) == (
        "Rebuilt from 2500 events (position 0 -> 2500)\n",
        "",
    )


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def on_a_terminal(exe: str, *argv: str) -> tuple[int, str, str]:
    """`cqrs ARGV` with stderr on a pseudo-terminal: (exit code, stdout, what it drew
    on the terminal)."""
    import pty

    leader, follower = pty.openpty()
    env = child_env(COLUMNS="120", TERM="xterm")
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [exe, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], SUBPROCESS_TIMEOUT)
        if not ready:
            break
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # the child closed the terminal (EIO)
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    out, _ = process.communicate(timeout=SUBPROCESS_TIMEOUT)
    return process.returncode, out.decode(), drawn.decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals")
def test_on_a_terminal_a_first_sync_draws_a_bar_with_its_total(store: Path, cqrs_exe: str) -> None:
    write_random_events(store / "journal.db", 5000, items=500, seed=1)
    code, out, drawn = on_a_terminal(cqrs_exe, "sync")
    assert code == 0
    # The summary goes to stdout (a pipe here), not above the bar on the terminal.
    assert out == "Synced 5000 events (position 0 -> 5000)\n"
    assert "Syncing" in drawn
    assert "Synced" not in drawn
    assert re.search(r"\b5000/5000\b", strip_ansi(drawn)), drawn
    assert "/?" not in drawn  # drawn from the first report, which knows the total
    code, out, drawn = on_a_terminal(cqrs_exe, "-q", "sync", "--rebuild")
    assert (code, out, drawn) == (0, "Rebuilt from 5000 events (position 0 -> 5000)\n", "")
