"""A follower measured as a user runs it: `cqrs sync --follow --json`, default options,
in a process of its own, while another process (this worker) writes.

- Commit to applied: each write is `CommandService.create_item` here; the clock starts
  when it returns (the commit is durable and visible) and stops when the follower's
  summary line for that position arrives on its stdout, which it prints after its
  projection's commit. Writes are 20-100 ms apart, at random (a fixed seed), so that
  they fall anywhere in the follower's wait.
- Idle CPU: the follower's CPU time (from /proc/PID/schedstat, in ns; /proc/PID/stat's
  clock ticks where that is missing) over `idle_seconds` with nothing written, in five
  slices, as a share of one core.

The task runs in a worker (`Context.run_task`) and returns every figure in its info.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time

from .tasks import TaskResult, TaskSpec

SLICES = 5
SETTLE = 0.5
"""Seconds between the follower's first sync and the first write, and before idling."""
TIMEOUT = 30.0
"""Seconds a write may take to show before the run fails."""


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class _Lines:
    """The follower's summary lines, each with the time it arrived, by end position."""

    def __init__(self, pipe: object) -> None:
        self.arrived: dict[int, float] = {}
        self.changed = threading.Condition()
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe: object) -> None:
        for line in pipe:  # type: ignore[attr-defined]
            at = time.perf_counter()
            with self.changed:
                self.arrived[json.loads(line)["end"]] = at
                self.changed.notify_all()

    def wait(self, position: int) -> float:
        """When a line covering `position` arrived."""
        with self.changed:
            found = self.changed.wait_for(
                lambda: any(end >= position for end in self.arrived), TIMEOUT
            )
            if not found:
                raise RuntimeError(f"the follower never applied position {position}")
            return min(at for end, at in self.arrived.items() if end >= position)


def follow_latency(spec: TaskSpec) -> TaskResult:
    """`spec.events` writes, each timed from commit to applied, then the idle CPU over
    `float(spec.source)` seconds. Info: `latencies_ms` and `idle_percent` (JSON lists),
    `rss_kib` (the follower's peak)."""
    from cqrs_cli import CommandService

    idle_seconds = float(spec.source)
    home = os.path.join(spec.workdir, f"follow-{spec.tag}")
    cqrs = os.path.join(os.path.dirname(sys.executable), "cqrs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CQRS_")}
    env["CQRS_HOME"] = home
    rng = random.Random(20)
    latencies: list[float] = []
    idle: list[float] = []
    with CommandService(home) as service:
        service.create_item("first")
        follower = subprocess.Popen(
            [cqrs, "sync", "--follow", "--json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        try:
            lines = _Lines(follower.stdout)
            lines.wait(1)
            time.sleep(SETTLE)
            for number in range(spec.events):
                time.sleep(rng.uniform(0.020, 0.100))
                position = service.create_item(f"item-{number}").position
                committed = time.perf_counter()
                assert position is not None
                latencies.append((lines.wait(position) - committed) * 1000)
            time.sleep(SETTLE)
            for _ in range(SLICES):
                cpu, wall = _cpu_seconds(follower.pid), time.perf_counter()
                time.sleep(idle_seconds / SLICES)
                used = _cpu_seconds(follower.pid) - cpu
                idle.append(used / (time.perf_counter() - wall) * 100)
            rss = _peak_rss_kib(follower.pid)
        finally:
            follower.terminate()
            follower.wait(timeout=TIMEOUT)
    return TaskResult(
        spec.events,
        sum(latencies) / 1000,
        {
            "latencies_ms": json.dumps(latencies),
            "idle_percent": json.dumps(idle),
            "rss_kib": str(rss),
        },
    )
