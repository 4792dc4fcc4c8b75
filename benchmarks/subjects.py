"""What is measured: cqrs itself, through its public Python API, as a user calls it.

Later workloads (sync, item get, apply, events) add their task here, one function each.
"""

from __future__ import annotations

import os
import time

from .fixtures import create_line, item_name, update_line
from .tasks import TaskResult, TaskSpec


def create_items(spec: TaskSpec) -> TaskResult:
    """`CommandService.create_item` for `events` distinct items: one command, one
    event, one transaction each, on one open service (as a long-lived caller has)."""
    from cqrs_cli import CommandService

    ids = [item_name(n) for n in range(spec.events)]
    home = os.path.join(spec.workdir, f"cqrs-home-{spec.tag}")
    with CommandService(home) as service:
        service.create_item("warm-up")  # creates the journal: not what is measured
        create = service.create_item
        start = time.perf_counter()
        for item_id in ids:
            create(item_id)
        seconds = time.perf_counter() - start
    return TaskResult(len(ids), seconds)


def apply_creates(spec: TaskSpec) -> TaskResult:
    """`cqrs apply FILE`, in process (the CLI's own function, so that the row measures
    what the command does, without the process start-up): an NDJSON file of `events`
    create commands, applied in one transaction to an empty journal. Writing the file
    is setup; the timing runs from opening it to the commit."""
    from cqrs_cli.cli.apply_command import run_apply
    from cqrs_cli.cli.state import state

    path = os.path.join(spec.workdir, f"apply-{spec.tag}.ndjson")
    with open(path, "w", encoding="utf-8") as handle:
        for n in range(spec.events):
            handle.write(create_line(n))
    state.journal = spec.path("cqrs-apply-journal")
    state.projection = spec.path("cqrs-apply-projection")
    state.quiet = True  # the one-line summary on stderr
    start = time.perf_counter()
    code = run_apply(path)
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"cqrs apply exited {code}")
    return TaskResult(spec.events, seconds)


UPDATED_ITEMS = 10
"""Items the updates of the `cqrs apply` updates row go to, round-robin."""


def apply_updates(spec: TaskSpec) -> TaskResult:
    """`cqrs apply FILE` in process, as `apply_creates`, of `events` update commands over
    UPDATED_ITEMS items (created beforehand by an untimed apply of their creates): each
    decision loads its item's state from the batch's own earlier appends."""
    from cqrs_cli.cli.apply_command import run_apply
    from cqrs_cli.cli.state import state

    creates = os.path.join(spec.workdir, f"apply-creates-{spec.tag}.ndjson")
    with open(creates, "w", encoding="utf-8") as handle:
        for n in range(UPDATED_ITEMS):
            handle.write(create_line(n))
    path = os.path.join(spec.workdir, f"apply-updates-{spec.tag}.ndjson")
    with open(path, "w", encoding="utf-8") as handle:
        for n in range(spec.events):
            handle.write(update_line(item_name(n % UPDATED_ITEMS), n // UPDATED_ITEMS + 1))
    state.journal = spec.path("cqrs-apply-journal")
    state.projection = spec.path("cqrs-apply-projection")
    state.quiet = True
    if run_apply(creates) != 0:
        raise RuntimeError("cqrs apply of the creates exited non-zero")
    start = time.perf_counter()
    code = run_apply(path)
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"cqrs apply exited {code}")
    return TaskResult(spec.events, seconds)


def _sync_paths(journal: str, spec: TaskSpec) -> object:
    from cqrs_cli import StorePaths

    return StorePaths(journal, spec.path("projection"))


def sync_from_empty(spec: TaskSpec) -> TaskResult:
    """`cqrs sync` into an empty projection (every view), from a prebuilt journal."""
    from cqrs_cli.sync.runner import Syncer

    with Syncer(_sync_paths(spec.source, spec)) as syncer:  # type: ignore[arg-type]
        start = time.perf_counter()
        report = syncer.run()
        seconds = time.perf_counter() - start
    return TaskResult(report.applied, seconds)


def sync_incremental(spec: TaskSpec) -> TaskResult:
    """`cqrs sync` of the second half of a journal into a projection that already holds
    the first half (built untimed from a copy of the journal cut in half)."""
    import sqlite3

    from cqrs_cli.sync.runner import Syncer

    half = spec.path("half-journal")
    source = sqlite3.connect(f"file:{spec.source}?mode=ro", uri=True)
    target = sqlite3.connect(half, isolation_level=None)
    source.backup(target)
    source.close()
    (head,) = target.execute("SELECT MAX(position) FROM events").fetchone()
    target.execute("DROP TRIGGER events_append_only_delete")  # setup of a copy only
    target.execute("DELETE FROM events WHERE position > ?", (head // 2,))
    target.close()
    with Syncer(_sync_paths(half, spec)) as syncer:  # type: ignore[arg-type]
        syncer.run()
    with Syncer(_sync_paths(spec.source, spec)) as syncer:  # type: ignore[arg-type]
        start = time.perf_counter()
        report = syncer.run()
        seconds = time.perf_counter() - start
    return TaskResult(report.applied, seconds)


def stream_events(spec: TaskSpec) -> TaskResult:
    """What `cqrs events > /dev/null` does, in process: every event of a prebuilt
    journal as an NDJSON envelope, written to a null device."""
    import sys

    from cqrs_cli.cli.events_output import stream_events as stream
    from cqrs_cli.cli.state import state

    state.journal = spec.source
    state.projection = spec.path("unused-projection")
    real = sys.stdout
    with open(os.devnull, "w", encoding="utf-8") as sink:
        sys.stdout = sink
        try:
            start = time.perf_counter()
            stream(stream_id=None, after=0, limit=None, event_type=None, follow=False, poll=1)
            seconds = time.perf_counter() - start
        finally:
            sys.stdout = real
    from cqrs_cli.journal.sqlite_journal import SqliteJournal

    with SqliteJournal.open(spec.source, create=False, readonly=True) as journal:
        count = journal.count_after(0)
    return TaskResult(count, seconds)
