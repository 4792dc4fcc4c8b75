"""The detached catch-up processes that `cqrs` writes leave behind, as processes: a shell
loop of writes leaves a complete projection within 2 s of its last write, never more
than one catch-up process alive at a time, and nothing behind (every one reaped, none
left running); catch-ups killed at any point, or racing `cqrs sync --rebuild`, keep
the projection exact.

The loops run under subreaper.py, which adopts and reaps the orphaned catch-ups as
init does on a normal machine (here, init reaps nothing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from catchup_helpers import SUBREAPER, bin_path_env, checkpoint, head, run_adopting, wait_caught_up
from common import CRASH_HOOK_ENV, child_env, installed_cqrs, run_cqrs
from projection_helpers import assert_projection_is_exact

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="subreaper.py needs Linux's prctl"
)


def env_for(store: Path, **extra: str) -> dict[str, str]:
    return bin_path_env(child_env(store, CQRS_CATCHUP="1", **extra))


def check_loop(store: Path, tmp_path: Path, creates: int) -> None:
    script = (
        f"for i in $(seq 1 {creates}); do cqrs -q item create item$i >/dev/null || exit 1; done"
    )
    report = run_adopting(script, store, env_for(store))
    assert report["exit"] == 0
    assert report["complete_after"] is not None and report["complete_after"] < 2.0, report
    assert report["max_alive"] == 1, report  # never two catch-up processes at once
    assert report["samples"] > 100, report  # the count was taken all along
    assert report["spawned"] >= 1, report
    assert report["reaped"] >= report["spawned"], report  # each one ended, and was reaped
    assert report["left"] == [], report  # no orphan left running
    assert head(store / "journal.db") == creates
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_a_loop_of_100_creates_leaves_a_complete_projection_and_no_process(
    store: Path, tmp_path: Path
) -> None:
    check_loop(store, tmp_path, 100)


@pytest.mark.slow
def test_a_loop_of_1000_creates_leaves_a_complete_projection_and_no_process(
    store: Path, tmp_path: Path
) -> None:
    check_loop(store, tmp_path, 1000)


@pytest.mark.parametrize(
    "point", ["mid-batch", "before-commit", "just-committed", "after-commit", "rebuild-mid"]
)
def test_a_catch_up_killed_at_any_point_leaves_an_exact_projection(
    store: Path, tmp_path: Path, point: str
) -> None:
    env = env_for(store)
    for n in range(3):
        assert run_cqrs(installed_cqrs(), "item", "create", f"a{n}", env=env).returncode == 0
    assert wait_caught_up(store) is not None
    if point == "rebuild-mid":
        # A catch-up that has to rebuild (a projection of an older view version) is
        # killed in the middle of it.
        import sqlite3

        conn = sqlite3.connect(store / "projection.db", isolation_level=None)
        conn.execute("UPDATE projection_views SET version = version - 1 WHERE view = 'items'")
        conn.close()
    # The write's catch-up inherits the crash hook: it SIGKILLs itself at `point`.
    script = "cqrs -q item create killed >/dev/null && cqrs -q item update a0 changed >/dev/null"
    report = run_adopting(script, store, env_for(store, **{CRASH_HOOK_ENV: f"{point}:1"}), 1)
    assert report["exit"] == 0  # the writes do not depend on their catch-up
    assert report["left"] == []
    # The next write's catch-up (no hook now) picks up where the killed one left off.
    report = run_adopting("cqrs -q item create after >/dev/null", store, env_for(store))
    assert report["complete_after"] is not None, report
    assert checkpoint(store / "projection.db") == head(store / "journal.db") == 6
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_catch_ups_killed_from_outside_while_writes_go_on_leave_an_exact_projection(
    store: Path, tmp_path: Path
) -> None:
    env = env_for(store)
    script = "for i in $(seq 1 60); do cqrs -q item create k$i >/dev/null || exit 1; done"
    loop = subprocess.Popen(
        [
            sys.executable,
            str(SUBREAPER),
            json.dumps(["bash", "-c", script]),
            str(store / "projection.db"),
            str(store / "journal.db"),
            "2",  # a killed catch-up may leave it behind: the next write completes it
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    killed = 0
    while loop.poll() is None:
        for pid in _catch_up_pids(store):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.03)
    assert loop.returncode == 0
    assert killed > 0
    # Whatever the kills left behind, the next write's catch-up completes it.
    report = run_adopting("cqrs -q item create last >/dev/null", store, env)
    assert report["complete_after"] is not None, report
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def test_catch_ups_racing_rebuilds_keep_the_projection_exact(store: Path, tmp_path: Path) -> None:
    env = env_for(store)
    script = (
        "( for i in $(seq 1 40); do cqrs -q item create r$i >/dev/null || exit 1; "
        "cqrs -q item update r$i changed >/dev/null || exit 1; done ) & writer=$!; "
        "for j in $(seq 1 6); do cqrs -q sync --rebuild >/dev/null || exit 2; done; "
        "wait $writer"
    )
    report = run_adopting(script, store, env)
    assert report["exit"] == 0, report
    assert report["complete_after"] is not None and report["complete_after"] < 2.0, report
    assert report["max_alive"] == 1, report
    assert report["left"] == [], report
    assert_projection_is_exact(store / "journal.db", store / "projection.db", tmp_path)


def _catch_up_pids(store: Path) -> list[int]:
    marker = os.fsencode(str(store / "projection.db"))
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if b"cqrs_cli.sync.detached" in cmdline and marker in cmdline:
                pids.append(int(name))
    return pids


def test_a_catch_up_ignores_python_files_in_the_writers_folder(store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "json.py").write_text('raise SystemExit("the folder\'s json.py was imported")\n')
    (folder / "cqrs_cli").mkdir()
    (folder / "cqrs_cli" / "__init__.py").write_text('raise SystemExit("a cqrs_cli/ here")\n')
    report = run_adopting(
        f"cd '{folder}' && cqrs -q item create X >/dev/null", store, env_for(store)
    )
    assert report["exit"] == 0
    assert report["complete_after"] is not None, report
    assert (store / "catchup.log").exists() is False
