"""The catch-up after writes: what it adds to a write, and what it costs on its own.

Every other row runs with CQRS_CATCHUP=0 (harness.child_env): a catch-up process left
behind by one sample would run during the next and skew it. Here the same `cqrs item
create` runs with the catch-up on and off, interleaved; after each write with it on,
the harness waits for that write's catch-up to end before the next sample, and its
wall time (from the write's exit to the catch-up's) is the second row.

The catch-up is an orphan once its writer exits. This process makes itself the child
subreaper (Linux) for the workload, so the orphan comes here, is waited for, and is
reaped: on a machine whose init reaps nothing it would otherwise stay a zombie.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import sys
import time

from .harness import Context, Goal, Row, Sample, Variant, child_env, compare, interleave, workload

CATCHUP_WRITE = "start-up: cqrs item create, catch-up on"
CATCHUP_OWN = "catch-up after a write: its own time"
PR_SET_CHILD_SUBREAPER = 36


def _subreaper(on: bool) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)


def _wait_for_adopted() -> float:
    """Seconds until every process adopted meanwhile (the write's catch-up) has ended."""
    started = time.perf_counter()
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return time.perf_counter() - started


@workload("catch-up", rows=(CATCHUP_WRITE, CATCHUP_OWN))
def catch_up(ctx: Context) -> list[Row]:
    """Whole processes, as the start-up rows; the catch-up row from the write's exit."""
    cqrs = os.path.join(os.path.dirname(sys.executable), "cqrs")
    home = os.path.join(ctx.workdir, "catchup-home")
    off = child_env(CQRS_HOME=home)
    on = child_env(CQRS_HOME=home, CQRS_CATCHUP="1")
    ids = itertools.count()
    if not _subreaper(True):
        raise RuntimeError("the catch-up rows need Linux (prctl PR_SET_CHILD_SUBREAPER)")

    own: list[Sample] = []  # each write's catch-up, in the order of the writes

    def with_catch_up(_: int) -> Sample:
        sample = ctx.run_command([cqrs, "item", "create", f"c{next(ids)}"], on)
        own.append(Sample(_wait_for_adopted() * 1000, 0))
        return sample

    variants = [
        Variant("on", with_catch_up),
        Variant("off", lambda _: ctx.run_command([cqrs, "item", "create", f"c{next(ids)}"], off)),
    ]
    try:
        ctx.run_command([cqrs, "item", "create", "warm", "--sync"], off)
        for variant in variants:  # warm-up: the files exist, the OS cache is filled
            variant.run(-1)
        samples = interleave(ctx.scale.startup_runs, variants, lambda line: ctx.log(line))
    finally:
        _subreaper(False)
    # The catch-up's own time, paired with the same round's write (catch-up off); the
    # warm-up's is left out.
    samples["own"] = own[1:]
    return [
        compare(
            CATCHUP_WRITE,
            samples,
            ("on", "cqrs item create ID with the catch-up on: until the writer exits"),
            "ms",
            baseline=("off", "the same write, CQRS_CATCHUP=0"),
            # The write's budget is 3x the floor (the start-up row); with it off the
            # write has measured under 2x, so up to 1.5x here keeps it within budget.
            goal=Goal("<= 1.5x the write with it off", 1.5, at_most=True),
        ),
        compare(
            CATCHUP_OWN,
            samples,
            ("own", "the detached catch-up: from the write's exit to its own (RSS not taken)"),
            "ms",
            baseline=("off", "a write, CQRS_CATCHUP=0"),
            goal_note="informational: runs after the write, in the background",
        ),
    ]
