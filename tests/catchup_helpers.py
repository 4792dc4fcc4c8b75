"""What the tests of the catch-up after writes share: the seed's example as written,
running a shell loop of `cqrs` writes under a subreaper (subreaper.py), and waiting for
a projection to reach the journal's head."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TypedDict

from common import SUBPROCESS_TIMEOUT

SEED_COMMANDS = """\
# Command Usage
command_service = CommandService()
command_service.create_item("Item1")
command_service.update_item("Item1", "Updated Description")
# Query Usage
query_service = QueryService()
print(query_service.get_item("Item1"))
# Handling different aspects separately
print(query_service.list_all_items())
"""
"""The pattern description's first snippet, verbatim (seed/000_ff0a50fed7aceaaf.txt)."""

SEED_EVENTUAL = """\
# Initialize services
command_service = CommandService()
query_service = QueryService()
# Business logic to handle a transaction
command_service.create_item("Item2")
query_service.get_item("Item2") # Immediate consistency is not guaranteed
# Ensuring eventual consistency
import time
time.sleep(1) # Simulate delay for data synchronization
print(query_service.get_item("Item2"))
"""
"""Its second snippet, verbatim."""

SEED_IMPORT = "from cqrs_cli import CommandService, QueryService\n"

SUBREAPER = Path(__file__).with_name("subreaper.py")


class Adopted(TypedDict):
    """What subreaper.py reports (see its docstring)."""

    exit: int
    complete_after: float | None
    max_alive: int
    samples: int
    spawned: int
    reaped: int
    left: list[int]


def run_adopting(script: str, home: Path, env: dict[str, str], settle: float = 30.0) -> Adopted:
    """Run the shell `script` under subreaper.py for the store in `home`."""
    result = subprocess.run(
        [
            sys.executable,
            str(SUBREAPER),
            json.dumps(["bash", "-c", script]),
            str(home / "projection.db"),
            str(home / "journal.db"),
            str(settle),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT * 20,
        check=True,
    )
    report: Adopted = json.loads(result.stdout.splitlines()[-1])
    return report


def bin_path_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with this environment's `cqrs` first on PATH."""
    folder = os.path.dirname(sys.executable)
    return {**env, "PATH": folder + os.pathsep + env.get("PATH", "")}


def checkpoint(projection: Path) -> int:
    """The position every view of the projection has reached (0 without one)."""
    if not projection.exists():
        return 0
    conn = sqlite3.connect(f"file:{projection}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT MIN(checkpoint) FROM projection_views").fetchone()[0] or 0)
    finally:
        conn.close()


def head(journal: Path) -> int:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])
    finally:
        conn.close()


def wait_caught_up(home: Path, timeout: float = 10.0) -> float | None:
    """Seconds until the projection in `home` reached the journal's head; None if it
    did not within `timeout`."""
    started = time.monotonic()
    while True:
        if checkpoint(home / "projection.db") >= head(home / "journal.db"):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.01)
