"""What passes between the harness and a worker process: a task's arguments and result.

Plain classes, not dataclasses: a worker imports this module, and every module it
imports shows in the peak RSS of every variant.
"""

from __future__ import annotations

import os


class TaskSpec:
    """Arguments of one timed task, passed to the worker process as JSON."""

    __slots__ = ("events", "source", "tag", "workdir")

    def __init__(self, workdir: str, tag: str, events: int, source: str = "") -> None:
        self.workdir = workdir
        self.tag = tag
        """Unique per run: names the files this run creates."""
        self.events = events
        self.source = source
        """A prebuilt file the task reads (a journal, an eventsourcing database)."""

    def path(self, name: str) -> str:
        """A file of this run: `name` plus the run's tag, in the work folder."""
        return os.path.join(self.workdir, f"{name}-{self.tag}.db")

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in ("workdir", "tag", "events", "source")}


class TaskResult:
    """What a task did: `events` in `seconds` of timed work (its setup excluded)."""

    __slots__ = ("events", "info", "seconds")

    def __init__(self, events: int, seconds: float, info: dict[str, str] | None = None) -> None:
        self.events = events
        self.seconds = seconds
        self.info = info or {}
        """Facts worth reporting, e.g. the synchronous setting the task ran with."""

    def to_json(self) -> dict[str, object]:
        return {"events": self.events, "seconds": self.seconds, "info": self.info}
