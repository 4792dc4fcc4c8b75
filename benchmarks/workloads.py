"""The workloads: one registered function each, returning the rows it declares.

A new workload is one more function here (and its tasks in `subjects`, `baselines`
and `peer`): decorate it with `@workload(name, rows=(...))`, build its variants, run
them with `interleave`, and turn the samples into rows with `compare`.
"""

from __future__ import annotations

import itertools
import os
import sys

from . import baselines, fixtures, peer, subjects
from .harness import Context, Goal, Row, Variant, child_env, compare, interleave, workload

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .tasks import TaskResult, TaskSpec

STARTUP = "start-up: cqrs item create"
STARTUP_QUERY = "start-up floor: import sqlite3, open, one query"
APPENDS = "per-command appends: CommandService.create_item"
BATCH = "baseline: executemany batch, one transaction"
READ = "baseline: read events in order"
PROJECTION = "baseline: per-event projection, 1,000/transaction"

FLOOR = "python -c 'import sqlite3'"
QUERY_SCRIPT = (
    "import sqlite3, sys; "
    "sqlite3.connect(sys.argv[1]).execute('SELECT COALESCE(MAX(position), 0) FROM events')"
    ".fetchone()"
)


def _progress(ctx: Context, name: str) -> Callable[[str], None]:
    return lambda line: ctx.log(f"[{name}] {line}")


@workload("start-up", rows=(STARTUP, STARTUP_QUERY))
def startup(ctx: Context) -> list[Row]:
    """Whole processes, wall time from spawn to exit, stdout piped (as in a script)."""
    python = sys.executable
    cqrs = os.path.join(os.path.dirname(python), "cqrs")
    home = os.path.join(ctx.workdir, "startup-home")
    journal = os.path.join(home, "journal.db")
    peer_db = os.path.join(ctx.workdir, "startup-peer.db")
    env = child_env(CQRS_HOME=home)
    ids = itertools.count()

    variants = [
        Variant("cqrs", lambda _: ctx.run_command([cqrs, "item", "create", f"s{next(ids)}"], env)),
        Variant("floor", lambda _: ctx.run_command([python, "-c", "import sqlite3"], env)),
        Variant("query", lambda _: ctx.run_command([python, "-c", QUERY_SCRIPT, journal], env)),
    ]
    if ctx.peer_missing is None:
        script = [python, "-c", peer.STARTUP_SCRIPT, peer_db]
        variants.append(Variant("peer", lambda _: ctx.run_command([*script, f"s{next(ids)}"], env)))
    for variant in variants:  # warm-up: creates the files, fills the OS cache
        variant.run(-1)
    samples = interleave(ctx.scale.startup_runs, variants, _progress(ctx, "start-up"))

    has_peer = ctx.peer_missing is None
    return [
        compare(
            STARTUP,
            samples,
            ("cqrs", "cqrs item create ID: the installed console script, a new id each run"),
            "ms",
            baseline=("floor", FLOOR),
            peer=("peer", "a fresh process doing one Application.save") if has_peer else None,
            peer_note=ctx.peer_missing or "",
            goal=Goal("<= 3x the floor", 3.0, at_most=True),
        ),
        compare(
            STARTUP_QUERY,
            samples,
            ("query", "python -c 'import sqlite3; connect(journal); one SELECT'"),
            "ms",
            baseline=("floor", FLOOR),
            goal_note="informational: the least any command that reads can cost",
        ),
    ]


def _throughput_row(
    ctx: Context,
    label: str,
    subject: tuple[Callable[[TaskSpec], TaskResult], str, str],
    baseline: tuple[Callable[[TaskSpec], TaskResult], str, str] | None,
    peer_side: tuple[Callable[[TaskSpec], TaskResult], str, str] | None,
    events: int,
    goal: Goal | None = None,
    goal_note: str = "informational",
) -> Row:
    """Interleaved rounds of up to three worker tasks (task, source file, description)
    on `events` events; figures in events/s."""
    if ctx.peer_missing is not None:
        peer_side = None
    sides = {"subject": subject, "baseline": baseline, "peer": peer_side}
    variants = [
        ctx.throughput(key, side[0], events, side[1])
        for key, side in sides.items()
        if side is not None
    ]
    samples = interleave(ctx.scale.rounds, variants, _progress(ctx, label))
    return compare(
        label,
        samples,
        ("subject", subject[2]),
        "events/s",
        baseline=("baseline", baseline[2]) if baseline else None,
        peer=("peer", peer_side[2]) if peer_side else None,
        peer_note=ctx.peer_missing or "n/a (no equivalent)",
        goal=goal,
        goal_note=goal_note,
    )


@workload("appends", rows=(APPENDS,))
def appends(ctx: Context) -> list[Row]:
    """One event per command, one transaction per event, each durable on return."""
    return [
        _throughput_row(
            ctx,
            APPENDS,
            (subjects.create_items, "", "CommandService.create_item, distinct ids"),
            (
                baselines.append_per_transaction,
                "",
                "plain sqlite3: BEGIN IMMEDIATE; INSERT; COMMIT per event",
            ),
            (peer.save_per_call, "", "Application.save of one new aggregate per call"),
            ctx.scale.append_events,
            goal=Goal(">= 0.70x plain", 0.70, at_most=False),
        )
    ]


@workload("batch", rows=(BATCH,))
def batch(ctx: Context) -> list[Row]:
    """Many events in one transaction: the yardstick for `cqrs apply`."""
    return [
        _throughput_row(
            ctx,
            BATCH,
            (
                baselines.executemany_batch,
                "",
                "plain sqlite3: executemany of rows prepared in memory",
            ),
            None,
            (peer.save_batch, "", "one Application.save of aggregates made beforehand"),
            ctx.scale.batch_events,
            goal_note="baseline for cqrs apply (to come)",
        )
    ]


@workload("read", rows=(READ,))
def read(ctx: Context) -> list[Row]:
    """Every event of a journal, in order: the yardstick for `cqrs events`."""
    events = ctx.scale.read_events
    journal = ctx.fixture(fixtures.build_journal, events)
    store = ctx.fixture(peer.build_store, events) if ctx.peer_missing is None else ""
    return [
        _throughput_row(
            ctx,
            READ,
            (baselines.read_in_order, journal, "SELECT * FROM events ORDER BY position"),
            None,
            (peer.read_notifications, store, "recorder.select_notifications, pages of 1,000"),
            events,
            goal_note="baseline for cqrs events (to come)",
        )
    ]


@workload("projection", rows=(PROJECTION,))
def projection(ctx: Context) -> list[Row]:
    """A projection from empty: the yardstick for `cqrs sync`."""
    events = ctx.scale.projection_events
    journal = ctx.fixture(fixtures.build_journal, events)
    store = ctx.fixture(peer.build_store, events) if ctx.peer_missing is None else ""
    return [
        _throughput_row(
            ctx,
            PROJECTION,
            (
                baselines.project,
                journal,
                "plain sqlite3: items + indexed item_history + checkpoint",
            ),
            None,
            (
                peer.project,
                store,
                "SQLiteTrackingRecorder view fed by select_notifications",
            ),
            events,
            goal_note="baseline for cqrs sync (to come)",
        )
    ]
