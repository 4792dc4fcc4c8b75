"""The workloads: one registered function each, returning the rows it declares.

A new workload is one more function here (and its tasks in `subjects`, `baselines`
and `peer`): decorate it with `@workload(name, rows=(...))`, build its variants, run
them with `interleave`, and turn the samples into rows with `compare`.
"""

from __future__ import annotations

import itertools
import json
import os
import sys

from . import baselines, fixtures, follow, peer, subjects
from .harness import (
    Context,
    Goal,
    Row,
    Sample,
    Variant,
    child_env,
    compare,
    interleave,
    workload,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .tasks import TaskResult, TaskSpec

STARTUP = "start-up: cqrs item create"
STARTUP_GET = "start-up: cqrs item get"
STARTUP_QUERY = "start-up floor: import sqlite3, open, one query"
APPENDS = "per-command appends: CommandService.create_item"
APPLY = "cqrs apply: creates, one transaction"
APPLY_UPDATES = "cqrs apply: updates over 10 items vs creates"
UPDATE_LONG = "cqrs item update: item with 100,000 events vs 1"
FOLLOW_LATENCY = "cqrs sync --follow: commit to applied"
FOLLOW_IDLE = "cqrs sync --follow: idle CPU"
EVENTS = "cqrs events: streaming the journal"
SYNC = "cqrs sync: from empty, all views"
SYNC_INCREMENTAL = "cqrs sync: incremental, updates onto synced creates"
GET_LARGE = "cqrs item get: large projection vs 1,000 items"

FLOOR = "python -c 'import sqlite3'"
QUERY_SCRIPT = (
    "import sqlite3, sys; "
    "sqlite3.connect(sys.argv[1]).execute('SELECT COALESCE(MAX(position), 0) FROM events')"
    ".fetchone()"
)


def _progress(ctx: Context, name: str) -> Callable[[str], None]:
    return lambda line: ctx.log(f"[{name}] {line}")


@workload("start-up", rows=(STARTUP, STARTUP_GET, STARTUP_QUERY))
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
        Variant("get", lambda _: ctx.run_command([cqrs, "item", "get", "warm", "-q"], env)),
        Variant("floor", lambda _: ctx.run_command([python, "-c", "import sqlite3"], env)),
        Variant("query", lambda _: ctx.run_command([python, "-c", QUERY_SCRIPT, journal], env)),
    ]
    if ctx.peer_missing is None:
        script = [python, "-c", peer.STARTUP_SCRIPT, peer_db]
        variants.append(Variant("peer", lambda _: ctx.run_command([*script, f"s{next(ids)}"], env)))
    ctx.run_command([cqrs, "item", "create", "warm", "--sync"], env)  # what `get` reads
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
            STARTUP_GET,
            samples,
            ("get", "cqrs item get ID -q: the projection, plus the journal's head"),
            "ms",
            baseline=("floor", FLOOR),
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


@workload("apply", rows=(APPLY, APPLY_UPDATES))
def apply(ctx: Context) -> list[Row]:
    """A batch of creates in one transaction, against executemany of the same rows; and
    a batch of updates over a few items, against the creates of the same rounds."""
    events = ctx.scale.apply_events
    sides = [
        ctx.throughput("subject", subjects.apply_creates, events),
        ctx.throughput("baseline", baselines.executemany_batch, events),
        ctx.throughput("updates", subjects.apply_updates, events),
    ]
    if ctx.peer_missing is None:
        sides.append(ctx.throughput("peer", peer.save_batch, events))
    samples = interleave(ctx.scale.rounds, sides, _progress(ctx, APPLY))
    creates = (
        "cqrs apply FILE in process (the CLI's run_apply): read and parse the NDJSON, "
        "validate, decide, hash, insert, commit"
    )
    return [
        compare(
            APPLY,
            samples,
            ("subject", creates),
            "events/s",
            baseline=(
                "baseline",
                "plain sqlite3: executemany of the same rows (cqrs's ids, times, data, "
                "hashes), prepared in memory",
            ),
            peer=("peer", "one Application.save of aggregates made beforehand")
            if ctx.peer_missing is None
            else None,
            peer_note=ctx.peer_missing or "n/a (no equivalent)",
            goal=Goal(">= 0.50x executemany", 0.50, at_most=False),
        ),
        compare(
            APPLY_UPDATES,
            samples,
            (
                "updates",
                f"cqrs apply FILE in process, {events:,} updates round-robin over "
                f"{subjects.UPDATED_ITEMS} items created beforehand (untimed)",
            ),
            "events/s",
            baseline=("subject", f"the creates row's figure, same rounds: {creates}"),
            goal=Goal(">= 0.70x the creates", 0.70, at_most=False),
        ),
    ]


@workload("events", rows=(EVENTS,))
def events(ctx: Context) -> list[Row]:
    """Every event of a journal, in order, as NDJSON: against reading the rows."""
    count = ctx.scale.read_events
    journal = ctx.fixture(fixtures.build_journal, count)
    store = ctx.fixture(peer.build_store, count) if ctx.peer_missing is None else ""
    return [
        _throughput_row(
            ctx,
            EVENTS,
            (subjects.stream_events, journal, "cqrs events > /dev/null, in process"),
            (baselines.read_in_order, journal, "SELECT * FROM events ORDER BY position"),
            (peer.read_notifications, store, "recorder.select_notifications, pages of 1,000"),
            count,
            goal_note="informational (events/s; peak RSS bounded)",
        )
    ]


@workload("sync", rows=(SYNC, SYNC_INCREMENTAL))
def sync(ctx: Context) -> list[Row]:
    """`cqrs sync` of every view (items, item_history, item_search) against the
    straightforward per-event projection of items and history."""
    count = ctx.scale.sync_events
    journal = ctx.fixture(fixtures.build_journal, count)
    # The split: `count` updates on top of `count` synced creates.
    split = ctx.fixture(fixtures.build_split_journal, count)
    store = ctx.fixture(peer.build_store, count) if ctx.peer_missing is None else ""
    baseline = (
        baselines.project,
        journal,
        "plain sqlite3, per event: items + indexed item_history + checkpoint, 1,000 per "
        "transaction",
    )
    peer_side = (peer.project, store, "SQLiteTrackingRecorder view fed by select_notifications")
    return [
        _throughput_row(
            ctx,
            SYNC,
            (subjects.sync_from_empty, journal, "Syncer.run() into an empty projection"),
            baseline,
            peer_side,
            count,
            goal=Goal(
                ">= 2x the straightforward projection, peak RSS <= 64 MiB",
                2.0,
                at_most=False,
                max_rss_mib=64,
            ),
        ),
        _throughput_row(
            ctx,
            SYNC_INCREMENTAL,
            (
                subjects.sync_incremental,
                split,
                f"Syncer.run() of {count:,} updates onto a projection of {count:,} "
                "synced creates, every view (search index included) current at each "
                "checkpoint",
            ),
            (
                baselines.project_second_half,
                split,
                "plain sqlite3, per event, the same split: the creates projected untimed, "
                "then the updates timed (items + indexed item_history + checkpoint, 1,000 "
                "per transaction)",
            ),
            None,
            count,
            goal=Goal(">= 1.5x the straightforward projection", 1.5, at_most=False),
        ),
    ]


@workload("get", rows=(GET_LARGE,))
def get(ctx: Context) -> list[Row]:
    """`cqrs item get` as a process against a large projection and a 1,000-item one."""
    cqrs = os.path.join(os.path.dirname(sys.executable), "cqrs")
    small = ctx.fixture(fixtures.build_item_store, 1_000)
    large = ctx.fixture(fixtures.build_item_store, ctx.scale.get_items)
    ids = itertools.count()

    def getter(home: str, items: int) -> Callable[[int], Sample]:
        env = child_env(CQRS_HOME=home)
        return lambda _: ctx.run_command(
            [cqrs, "item", "get", fixtures.item_name((next(ids) * 7919) % items)], env
        )

    variants = [
        Variant("large", getter(large, ctx.scale.get_items)),
        Variant("small", getter(small, 1_000)),
    ]
    for variant in variants:
        variant.run(-1)
    samples = interleave(ctx.scale.startup_runs, variants, _progress(ctx, "get"))
    return [
        compare(
            GET_LARGE,
            samples,
            ("large", f"cqrs item get ID, {ctx.scale.get_items:,} items"),
            "ms",
            baseline=("small", "cqrs item get ID, 1,000 items"),
            goal=Goal("<= 1.1x the 1,000-item time", 1.1, at_most=True),
        )
    ]


@workload("update", rows=(UPDATE_LONG,))
def update(ctx: Context) -> list[Row]:
    """`cqrs item update` as a process on an item with a long history and on one with a
    single event, in the same journal: a decision must not cost more with history."""
    cqrs = os.path.join(os.path.dirname(sys.executable), "cqrs")
    events = ctx.scale.long_stream_events
    home = ctx.fixture(fixtures.build_long_item_store, events)
    env = child_env(CQRS_HOME=home)
    numbers = itertools.count()

    def updater(item: str) -> Callable[[int], Sample]:
        return lambda _: ctx.run_command(
            [cqrs, "item", "update", item, f"bench {next(numbers)}"], env
        )

    variants = [
        Variant("long", updater(fixtures.LONG_ITEM)),
        Variant("short", updater(fixtures.SHORT_ITEM)),
    ]
    for variant in variants:
        variant.run(-1)
    samples = interleave(ctx.scale.startup_runs, variants, _progress(ctx, "update"))
    return [
        compare(
            UPDATE_LONG,
            samples,
            ("long", f"cqrs item update ID TEXT, an item of {events:,} events (cqrs apply)"),
            "ms",
            baseline=("short", "cqrs item update ID TEXT, an item of 1 event, same journal"),
            goal=Goal(
                "<= 1.2x the 1-event item, peak RSS <= 40 MB", 1.2, at_most=True, max_rss_mib=38.1
            ),
        )
    ]


@workload("follow", rows=(FOLLOW_LATENCY, FOLLOW_IDLE))
def follow_journal(ctx: Context) -> list[Row]:
    """`cqrs sync --follow` with its default options: how soon a commit is applied, and
    what the follower costs while nothing happens (benchmarks/follow.py)."""
    writes = ctx.scale.follow_writes
    ctx.log(f"[follow] {writes} writes, then {ctx.scale.idle_seconds:g} s idle")
    result, _ = ctx.run_task(follow.follow_latency, writes, str(ctx.scale.idle_seconds))
    rss = int(result.info["rss_kib"])
    latencies = [Sample(v, rss) for v in json.loads(result.info["latencies_ms"])]
    idle = [Sample(v, rss) for v in json.loads(result.info["idle_percent"])]
    absolute = "- (a goal of its own: no baseline)"
    return [
        compare(
            FOLLOW_LATENCY,
            {"follow": latencies},
            (
                "follow",
                f"cqrs sync --follow --json, default options, in its own process: from "
                f"the return of CommandService.create_item in another process to the "
                f"follower's summary line (after its projection commit), {writes} writes "
                "20-100 ms apart",
            ),
            "ms",
            goal=Goal(
                "median <= 10 ms, p90 <= 50 ms", 10.0, at_most=True, absolute=True, p90_limit=50.0
            ),
            baseline_note=absolute,
        ),
        compare(
            FOLLOW_IDLE,
            {"idle": idle},
            (
                "idle",
                f"the same follower's CPU time over {ctx.scale.idle_seconds:g} s with "
                f"nothing written, in {follow.SLICES} slices (/proc/PID/schedstat)",
            ),
            "% of a core",
            goal=Goal("<= 3% of a core", 3.0, at_most=True, absolute=True),
            baseline_note=absolute,
        ),
    ]


# The catch-up after writes has its own module (it runs as a subreaper): importing it
# here registers its rows after these, wherever the workloads are loaded.
from . import catchup as _catchup  # noqa: E402, F401

# The PostgreSQL journal's rows (benchmarks/postgres.py: a server of their own, skipped
# with the reason where there are no server binaries), after all the SQLite rows.
from . import postgres as _postgres  # noqa: E402, F401
