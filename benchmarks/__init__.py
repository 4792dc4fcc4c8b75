"""The `cqrs` benchmark suite: `python -m benchmarks --scale quick|full|tiny`.

Every figure that matters is a ratio against a baseline measured in the same run,
interleaved round by round, reported as the median with the min-max range. Modules:

- `harness`    the workload registry, rows, interleaved rounds, child processes
- `stats`      medians, ranges and per-round ratios
- `scales`     how big each run is (tiny, quick, full)
- `launcher`   starts each measured process: its wall time and its own peak RSS
- `worker`     the child process that runs one timed task (`tasks`: its arguments)
- `fixtures`   the event plan and the prebuilt journal shared by the rows
- `subjects`   what is measured: cqrs itself
- `baselines`  the same jobs in plain sqlite3
- `peer`       the same jobs with the `eventsourcing` library (`peer_model`: its classes)
- `follow`     a `cqrs sync --follow` process: commit-to-applied latency, idle CPU
- `workloads`  one function per workload, registered with `@workload`
- `catchup`    the catch-up after writes: what it adds to a write, and its own time
- `report`, `png`  the table (stdout and docs/benchmarks.md) and the chart

Nothing is imported here, so that worker processes pay only for what their task needs.
"""
