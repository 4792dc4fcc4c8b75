"""`python subreaper.py ARGV_JSON PROJECTION JOURNAL SETTLE`: run a command as init would
see it, for the tests of the catch-up processes `cqrs` writes leave behind.

It makes itself the child subreaper (Linux prctl), so that every process orphaned
under it (each detached catch-up, once its writer has exited) is adopted and reaped
here rather than by the machine's init, which on some machines (containers) reaps
nothing. While the command runs, a thread counts, every 2 ms, the live catch-up
processes of PROJECTION (by their command line: a zombie has none). When the command
has exited, it measures how long the projection took to reach the journal's head,
waits SETTLE seconds at most for every adopted process to end, reaping each, and
prints one JSON object:

  exit           the command's exit code
  complete_after seconds from the command's exit until the projection had every event
                 (null: not within SETTLE)
  max_alive      the most catch-up processes of PROJECTION seen alive at one time
  samples        how many times they were counted
  spawned        distinct catch-up processes seen
  reaped         adopted processes reaped here
  left           pids of processes still alive under this one at the end (orphans)
"""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36


def catch_ups(projection: bytes) -> set[int]:
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as file:
                cmdline = file.read()
        except OSError:
            continue
        if b"cqrs_cli.sync.detached" in cmdline and projection in cmdline:
            found.add(int(name))
    return found


def position(path: str, sql: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return -1
    try:
        return int(conn.execute(sql).fetchone()[0] or 0)
    except sqlite3.Error:
        return -1
    finally:
        conn.close()


def main() -> None:
    argv = json.loads(sys.argv[1])
    projection, journal, settle = sys.argv[2], sys.argv[3], float(sys.argv[4])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    seen: set[int] = set()
    counts = {"max_alive": 0, "samples": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            alive = catch_ups(os.fsencode(projection))
            seen.update(alive)
            counts["max_alive"] = max(counts["max_alive"], len(alive))
            counts["samples"] += 1
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    code = subprocess.call(argv)
    ended = time.monotonic()
    deadline = ended + settle
    complete_after = None
    while time.monotonic() < deadline:
        head = position(journal, "SELECT MAX(position) FROM events")
        reached = position(projection, "SELECT MIN(checkpoint) FROM projection_views")
        if head >= 0 and reached >= head:
            complete_after = time.monotonic() - ended
            break
        time.sleep(0.01)
    reaped = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break  # nothing left under us
        if pid:
            reaped += 1
        elif time.monotonic() > deadline:
            break
        else:
            time.sleep(0.005)
    stop.set()
    watcher.join()
    left = sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and _ours(int(p)))
    print(
        json.dumps(
            {
                "exit": code,
                "complete_after": complete_after,
                "max_alive": counts["max_alive"],
                "samples": counts["samples"],
                "spawned": len(seen),
                "reaped": reaped,
                "left": left,
            }
        )
    )


def _ours(pid: int) -> bool:
    """Whether `pid` is a child of this process (adopted or not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return int(fields[1]) == os.getpid()


if __name__ == "__main__":
    main()
