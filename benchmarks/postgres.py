"""The PostgreSQL journal, side by side with plain psycopg2 on the same server (issue 11).

The section starts its own server with the tests' PgServer (tests/pg_server.py: initdb
in a temporary folder, a free loopback port; as the `postgres` user when root) and
removes it at the end. Where the machine has no server binaries, or no psycopg2, the
section registers no rows and says why on stderr: `make bench` runs on without it.

Every row is a ratio to a baseline measured in the same rounds (harness.interleave), on
the same server; the worker-side tasks are in pg_tasks.py. Sizes are this section's own
(PG_SCALES), smaller than the SQLite rows' at the quick scale: a server round trip per
write makes every sample slower, and the section must stay within about two minutes.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from . import pg_tasks, subjects
from .harness import (
    PACKAGE_ROOT,
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
from .report import format_ratio
from .stats import paired_ratios

WRITERS = f"PostgreSQL: {pg_tasks.WRITERS} writer processes, single commands"
WRITERS_NOTIFY = f"PostgreSQL: {pg_tasks.WRITERS} writers, NOTIFY inside the transaction"
APPLY = "PostgreSQL: cqrs apply, creates, one transaction"
SYNC = "PostgreSQL: cqrs sync from empty, all views"
STARTUP = "PostgreSQL: start-up, cqrs item create"
FOLLOW = "PostgreSQL: cqrs sync --follow, commit to applied"
ROWS = (WRITERS, WRITERS_NOTIFY, APPLY, SYNC, STARTUP, FOLLOW)


@dataclass(frozen=True)
class PgScale:
    rounds: int
    writer_seconds: float
    """The window in which all writers of one sample write (each round, each kind)."""
    apply_events: int
    sync_events: int
    startup_runs: int
    follow_writes: int


PG_SCALES = {
    "tiny": PgScale(2, 0.3, 500, 1_000, 3, 10),
    # The sizes are 100,000 creates applied and 200,000 events synced (full);
    # quick halves them, as the SQLite rows scale down from full to quick.
    "quick": PgScale(3, 1.5, 50_000, 100_000, 20, 50),
    "full": PgScale(5, 3.0, 100_000, 200_000, 40, 100),
}

BARE_INSERT = (
    "import sys, psycopg2; "
    "conn = psycopg2.connect(sys.argv[1]); cur = conn.cursor(); "
    f'cur.execute("INSERT INTO {pg_tasks.PLAIN_TABLE} (event_id, stream_id, stream_version, '
    "event_type, schema_version, data, recorded_at, command_id, prev_hash, hash) VALUES "
    "(%s, %s, 1, 'ItemCreated', 1, '{}', '', '', '', '')\", (sys.argv[2], sys.argv[2])); "
    "conn.commit()"
)
"""The start-up row's baseline: a fresh Python that imports psycopg2, connects and
commits one INSERT. Argv: the server's locator (no schema), a unique id."""


def _server_module() -> Any:
    """tests/pg_server.py, imported from the tests folder (one PgServer for tests and
    bench); it imports pytest, which the bench's install (dev and bench extras) has."""
    folder = str(PACKAGE_ROOT / "tests")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("pg_server")


def unavailable() -> str | None:
    """Why the section cannot run here, or None. Checked without starting anything."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install 'cqrs-cli[postgres]')"
    try:
        server = _server_module()
    except ImportError as exc:
        return f"tests/pg_server.py cannot be imported ({exc})"
    if server._bindir() is None:
        return "no PostgreSQL server binaries (initdb) on this machine"
    return None


def _progress(ctx: Context, label: str) -> Any:
    return lambda line: ctx.log(f"[postgres] {label}: {line}")


def _writer_variant(ctx: Context, key: str, kind: str, url: str, seconds: float) -> Variant:
    source = json.dumps({"kind": kind, "url": url, "seconds": seconds})
    return ctx.throughput(key, pg_tasks.writers, 0, source)


def run_section(ctx: Context) -> list[Row]:
    pg_server = _server_module()
    try:
        server = pg_server.PgServer()
    except BaseException as exc:  # pytest's skip and fail are BaseExceptions
        raise RuntimeError(f"the PostgreSQL server could not be made: {exc}") from None
    # A SIGTERM (a timeout, a CI runner giving up) would end the bench without its
    # `finally`, leaving the server running and its folder behind: make it an exit.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        ctx.log("[postgres] starting a server of the bench's own")
        server.start()
        pg_server.wait_until_up(server)
        return _rows(ctx, server)
    finally:
        server.remove()
        signal.signal(signal.SIGTERM, previous)


def _rows(ctx: Context, server: Any) -> list[Row]:
    scale = PG_SCALES[ctx.scale.name]
    base = server.url()
    has_peer = ctx.peer_missing is None and _peer_importable()
    peer_note = ctx.peer_missing or _PEER_MISSING
    setup = {
        "template": server.url(pg_tasks.TEMPLATE_SCHEMA),
        "peer_schemas": ["bench_peer_writers"] if has_peer else [],
    }
    ctx.run_task(pg_tasks.setup_server, 0, json.dumps(setup))
    rows = _writer_rows(ctx, server, scale, has_peer, peer_note)
    rows.append(_apply_row(ctx, base, scale, has_peer, peer_note))
    rows.append(_sync_row(ctx, base, scale))
    rows.append(_startup_row(ctx, server, scale))
    rows.append(_follow_row(ctx, base, scale))
    return rows


_PEER_MISSING = "eventsourcing's PostgreSQL recorder needs psycopg 3 (the bench extra)"


def _peer_importable() -> bool:
    try:
        import eventsourcing.postgres  # noqa: F401
    except ImportError:
        return False
    return True


def _writer_rows(
    ctx: Context, server: Any, scale: PgScale, has_peer: bool, peer_note: str
) -> list[Row]:
    seconds = scale.writer_seconds
    variants = [
        _writer_variant(ctx, "cqrs", "cqrs", server.url("bench_writers"), seconds),
        _writer_variant(ctx, "inside", "cqrs-notify-inside", server.url("bench_inside"), seconds),
        _writer_variant(ctx, "plain", "plain", server.url(), seconds),
    ]
    if has_peer:
        variants.append(_writer_variant(ctx, "peer", "peer", server.url(), seconds))
    samples = interleave(scale.rounds, variants, _progress(ctx, "writers"))
    window = f"{pg_tasks.WRITERS} processes writing for the same {seconds:g} s window"
    plain = (
        "plain",
        f"psycopg2, {window}: one INSERT of a journal-shaped row + COMMIT each, into a "
        "table with the journal's columns and a primary key",
    )
    goal = Goal(">= 0.70x plain INSERT transactions", 0.70, at_most=False)
    # The question (does a NOTIFY inside the transaction cost guarantee 3?) is
    # this ratio, taken per round like every other: said in the row's description.
    inside_vs_after = format_ratio(
        paired_ratios([s.value for s in samples["inside"]], [s.value for s in samples["cqrs"]])
    )
    return [
        compare(
            WRITERS,
            samples,
            ("cqrs", f"CommandService(journal=...).create_item, distinct ids, {window}"),
            "writes/s",
            baseline=plain,
            peer=(
                ("peer", f"eventsourcing's PostgreSQL recorder: Application.save, {window}")
                if has_peer
                else None
            ),
            peer_note=peer_note,
            goal=goal,
        ),
        compare(
            WRITERS_NOTIFY,
            samples,
            (
                "inside",
                "the same cqrs writers with the followers' NOTIFY moved inside the write "
                f"transaction (pg_tasks._notify_inside), {window}; per round against the "
                f"default (NOTIFY after COMMIT): {inside_vs_after}",
            ),
            "writes/s",
            baseline=plain,
            goal=goal,
        ),
    ]


def _apply_row(ctx: Context, base: str, scale: PgScale, has_peer: bool, peer_note: str) -> Row:
    events = scale.apply_events
    source = json.dumps({"url": base})
    variants = [
        ctx.throughput("subject", pg_tasks.apply_creates, events, source),
        ctx.throughput("baseline", pg_tasks.copy_creates, events, source),
    ]
    if has_peer:
        variants.append(ctx.throughput("peer", pg_tasks.peer_save_batch, events, source))
    samples = interleave(scale.rounds, variants, _progress(ctx, "apply"))
    return compare(
        APPLY,
        samples,
        (
            "subject",
            f"cqrs apply FILE in process (run_apply) of {events:,} creates into a new "
            "PostgreSQL journal: parse, validate, decide, hash, insert, commit",
        ),
        "events/s",
        baseline=(
            "baseline",
            "plain COPY of the same rows (cqrs's ids, data, hashes; prepared in memory) "
            "into a table LIKE the journal's events INCLUDING ALL, then COMMIT",
        ),
        peer=(
            (
                "peer",
                f"Application.save of the plan's aggregates, {pg_tasks.PEER_SAVE:,} a save "
                "(PostgreSQL recorder; see pg_tasks.PEER_SAVE)",
            )
            if has_peer
            else None
        ),
        peer_note=peer_note,
        goal_note="informational: what cqrs adds to the storage's fastest bulk path",
    )


def _sync_row(ctx: Context, base: str, scale: PgScale) -> Row:
    count = scale.sync_events
    ctx.log(f"[postgres] building a journal of {count:,} events on the server")
    built, _ = ctx.run_task(pg_tasks.build_journal, count, json.dumps({"url": base}))
    journal = built.info["path"]
    variants = [
        ctx.throughput("subject", subjects.sync_from_empty, count, journal),
        ctx.throughput("baseline", pg_tasks.project, count, journal),
    ]
    samples = interleave(scale.rounds, variants, _progress(ctx, "sync"))
    return compare(
        SYNC,
        samples,
        ("subject", "Syncer.run() from the PostgreSQL journal into an empty local projection"),
        "events/s",
        baseline=(
            "baseline",
            "the SQLite row's straightforward projection (baselines._project_batches) "
            "reading the server: pages of 1,000 by position; items + indexed "
            "item_history + checkpoint in a local SQLite file, one transaction per page",
        ),
        goal=Goal(">= 2x the straightforward projection", 2.0, at_most=False),
    )


def _startup_row(ctx: Context, server: Any, scale: PgScale) -> Row:
    python = sys.executable
    cqrs = os.path.join(os.path.dirname(python), "cqrs")
    journal = server.url("bench_startup")
    env = child_env(CQRS_HOME=os.path.join(ctx.workdir, "pg-startup-home"), CQRS_JOURNAL=journal)
    ids = itertools.count()
    variants = [
        Variant("cqrs", lambda _: ctx.run_command([cqrs, "item", "create", f"s{next(ids)}"], env)),
        Variant(
            "bare",
            lambda _: ctx.run_command(
                [python, "-c", BARE_INSERT, server.url(), f"s{next(ids)}"], env
            ),
        ),
    ]
    for variant in variants:  # warm-up: the journal made, the OS cache filled
        variant.run(-1)
    samples = interleave(scale.startup_runs, variants, _progress(ctx, "start-up"))
    return compare(
        STARTUP,
        samples,
        (
            "cqrs",
            "cqrs item create ID with CQRS_JOURNAL=postgresql://... (CQRS_CATCHUP=0), "
            "a new id each run",
        ),
        "ms",
        baseline=("bare", "python -c 'import psycopg2; connect; one INSERT; commit'"),
        goal=Goal("<= 1.5x the bare psycopg2 insert", 1.5, at_most=True),
    )


def _follow_row(ctx: Context, base: str, scale: PgScale) -> Row:
    writes = scale.follow_writes
    ctx.log(f"[postgres] follow: {writes} writes")
    result, _ = ctx.run_task(pg_tasks.follow_latency, writes, json.dumps({"url": base}))
    rss = int(result.info["rss_kib"])
    latencies = [Sample(v, rss) for v in json.loads(result.info["latencies_ms"])]
    return compare(
        FOLLOW,
        {"follow": latencies},
        (
            "follow",
            "cqrs sync --follow --json against the PostgreSQL journal (LISTEN, polling "
            "as well), in its own process: from the return of CommandService.create_item "
            "in another process to the follower's summary line (after its projection "
            f"commit), {writes} writes 20-100 ms apart",
        ),
        "ms",
        goal=Goal(
            "median <= 20 ms, p90 <= 50 ms", 20.0, at_most=True, absolute=True, p90_limit=50.0
        ),
        baseline_note="- (a goal of its own: no baseline)",
    )


_REASON = unavailable()
if _REASON is None:
    workload("postgres", rows=ROWS)(run_section)
else:

    def _skipped(ctx: Context) -> list[Row]:
        ctx.log(f"[postgres] skipped: {_REASON}")
        return []

    workload("postgres", rows=())(_skipped)
