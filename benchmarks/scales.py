"""How big each run is. `tiny` is for the smoke test, `quick` for `make bench`,
`full` for the 1M-event figures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    startup_runs: int
    """Processes started per variant in the start-up rows (one of each per round)."""
    rounds: int
    """Interleaved rounds for the in-process rows."""
    append_events: int
    """Commands per round in the per-command append rows (one transaction each)."""
    batch_events: int
    """Events written in one transaction in the batch rows."""
    read_events: int
    """Events in the journal that the read rows read in order."""
    projection_events: int
    """Events the projection rows project from an empty projection."""
    apply_events: int
    """Create commands in the `cqrs apply` file (and rows in its executemany baseline)."""
    sync_events: int
    """Events in the journal that `cqrs sync` projects from empty; the incremental row
    syncs this many updates onto a projection of this many creates."""
    get_items: int
    """Items in the large projection of the `cqrs item get` row (the small one has 1,000)."""
    long_stream_events: int
    """Events of the one long item that the `cqrs item update` row updates."""
    follow_writes: int
    """Writes whose commit-to-applied time the follow row measures (20-100 ms apart)."""
    idle_seconds: float
    """How long the idle follower's CPU time is measured (in five slices)."""


SCALES = {
    scale.name: scale
    for scale in (
        Scale("tiny", 3, 2, 100, 500, 1_000, 1_000, 500, 1_000, 2_000, 1_000, 10, 1.0),
        Scale(
            "quick",
            40,
            5,
            5_000,
            100_000,
            100_000,
            100_000,
            100_000,
            100_000,
            100_000,
            100_000,
            50,
            10.0,
        ),
        Scale(
            "full",
            60,
            5,
            20_000,
            100_000,
            1_000_000,
            1_000_000,
            100_000,
            1_000_000,
            1_000_000,
            100_000,
            100,
            20.0,
        ),
    )
}
