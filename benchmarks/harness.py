"""The workload registry, the rows workloads return, and how measurements are taken.

A workload is one function, registered with `@workload(name, rows=...)`, that takes a
`Context` and returns `Row`s: the rows it declares, in that order. It measures its
variants (cqrs, a plain-sqlite3 baseline, the eventsourcing peer) in interleaved rounds
with `interleave`, each variant's run in a fresh child process (`Context.throughput`
for a task in a worker, `Context.run_command` for a whole command), so that peak RSS
is the variant's own and no variant inherits another's imports, caches or garbage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .stats import Summary, paired_ratios
from .tasks import TaskResult, TaskSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from .scales import Scale

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The folder holding the `benchmarks` package (the repository)."""

NO_PEER = "n/a (no equivalent)"


# -- Measurements ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One measurement of one variant: the figure and the process's peak RSS."""

    value: float
    rss_kib: int
    info: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One contender of a comparison: `run(round)` measures it once."""

    key: str
    run: Callable[[int], Sample]


def interleave(
    rounds: int, variants: Sequence[Variant], progress: Callable[[str], None]
) -> dict[str, list[Sample]]:
    """Run every variant once per round, A B C then C B A, alternating, so that a slow
    spell of the machine and any drift (a warming cache, a growing file) fall on every
    variant alike. Samples of the same round are paired by their index."""
    samples: dict[str, list[Sample]] = {v.key: [] for v in variants}
    for number in range(rounds):
        order = variants if number % 2 == 0 else list(reversed(variants))
        for variant in order:
            samples[variant.key].append(variant.run(number))
        progress(f"round {number + 1}/{rounds}")
    return samples


# -- Rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A summarised figure: what was run, in which unit, median and range, peak RSS."""

    name: str
    unit: str
    figure: Summary
    rss_mib: Summary
    notes: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, name: str, unit: str, samples: Sequence[Sample], notes: Iterable[str] = ()
    ) -> Measured:
        infos = sorted({f"{k}={v}" for s in samples for k, v in s.info.items()})
        return cls(
            name,
            unit,
            Summary.of([s.value for s in samples]),
            Summary.of([s.rss_kib / 1024 for s in samples]),
            (*notes, *infos),
        )


@dataclass(frozen=True)
class Goal:
    """A target for the ratio to the baseline: `ratio <= limit` or `ratio >= limit`;
    with `absolute`, for the row's own figure (its median) instead, for a row with no
    natural baseline (a latency, an idle CPU share)."""

    text: str
    limit: float
    at_most: bool
    max_rss_mib: float | None = None
    """Also required, when set: the subject's highest peak RSS stays under this."""
    absolute: bool = False
    p90_limit: float | None = None
    """With `absolute`, also required when set: the figure's 90th percentile."""

    def met(self, ratio: float, rss_mib: Summary | None = None) -> bool:
        within = ratio <= self.limit if self.at_most else ratio >= self.limit
        if self.max_rss_mib is not None and rss_mib is not None:
            within = within and rss_mib.high <= self.max_rss_mib
        return within

    def met_by_figure(self, figure: Summary, rss_mib: Summary) -> bool:
        within = self.met(figure.median, rss_mib)
        if self.p90_limit is not None:
            p90 = figure.p90
            within = within and (p90 <= self.p90_limit if self.at_most else p90 >= self.p90_limit)
        return within


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    label: str
    subject: Measured
    baseline: Measured | None = None
    vs_baseline: Summary | None = None
    peer: Measured | None = None
    vs_peer: Summary | None = None
    peer_note: str = NO_PEER
    """Why there is no peer figure, when there is none."""
    goal: Goal | None = None
    goal_note: str = "informational"
    """What the row is for, when it has no goal."""
    baseline_note: str = "- (this row is a baseline)"
    """The baseline cell of a row without a baseline."""

    @property
    def met(self) -> bool | None:
        if self.goal is not None and self.goal.absolute:
            return self.goal.met_by_figure(self.subject.figure, self.subject.rss_mib)
        if self.goal is None or self.vs_baseline is None:
            return None
        return self.goal.met(self.vs_baseline.median, self.subject.rss_mib)


def compare(
    label: str,
    samples: Mapping[str, Sequence[Sample]],
    subject: tuple[str, str],
    unit: str,
    baseline: tuple[str, str] | None = None,
    peer: tuple[str, str] | None = None,
    peer_note: str = NO_PEER,
    goal: Goal | None = None,
    goal_note: str = "informational",
    notes: Mapping[str, Iterable[str]] | None = None,
    baseline_note: str = "- (this row is a baseline)",
) -> Row:
    """A row from interleaved samples. `subject`, `baseline` and `peer` are (sample
    key, description); ratios are taken per round, subject over the other side."""
    notes = notes or {}

    def measured(key: str, name: str) -> Measured:
        return Measured.of(name, unit, samples[key], notes.get(key, ()))

    def ratio(key: str) -> Summary:
        return paired_ratios(
            [s.value for s in samples[subject[0]]], [s.value for s in samples[key]]
        )

    return Row(
        label,
        measured(*subject),
        baseline=measured(*baseline) if baseline else None,
        vs_baseline=ratio(baseline[0]) if baseline else None,
        peer=measured(*peer) if peer else None,
        vs_peer=ratio(peer[0]) if peer else None,
        peer_note=peer_note,
        goal=goal,
        goal_note=goal_note,
        baseline_note=baseline_note,
    )


# -- The registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    rows: tuple[str, ...]
    """The labels of the rows it returns, in order: the smoke test checks them all."""
    run: Callable[[Context], list[Row]]


REGISTRY: list[Workload] = []


def workload(
    name: str, rows: Sequence[str]
) -> Callable[[Callable[[Context], list[Row]]], Callable[[Context], list[Row]]]:
    """Register a workload function under `name`, declaring the labels of its rows."""

    def register(run: Callable[[Context], list[Row]]) -> Callable[[Context], list[Row]]:
        if any(w.name == name for w in REGISTRY):
            raise ValueError(f"workload {name!r} is registered twice")
        REGISTRY.append(Workload(name, tuple(rows), run))
        return run

    return register


# -- Running things --------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessRun:
    seconds: float
    returncode: int
    stdout: bytes
    stderr: bytes
    rss_kib: int


LAUNCHER = Path(__file__).resolve().parent / "launcher.py"


def run_process(argv: Sequence[str], env: Mapping[str, str]) -> ProcessRun:
    """Run argv to completion with stdout piped: its wall time and its own peak RSS,
    both taken by `launcher.py` (see there why the harness cannot take them itself)."""
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "report")
        errors = os.path.join(folder, "stderr")
        with open(errors, "wb") as err:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", str(LAUNCHER), report, *argv],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
                check=False,
            )  # fmt: skip
        with open(errors, "rb") as err:
            stderr = err.read()
        try:
            with open(report, encoding="ascii") as lines:
                seconds, rss = lines.read().split()
        except FileNotFoundError:
            seconds, rss = "nan", "0"  # the launcher itself failed: stderr says why
    return ProcessRun(float(seconds), proc.returncode, proc.stdout, stderr, int(rss))


class BenchError(RuntimeError):
    """A variant failed: the run stops, naming the command and its error output."""


def child_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: ours without any CQRS_* setting (each run
    names its own store) and with this package importable. The catch-up after writes is
    off (a process left behind by one sample would run during the next); the catch-up
    rows (catchup.py) turn it on for their own samples."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CQRS_")}
    env["CQRS_CATCHUP"] = "0"
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(PACKAGE_ROOT) + (os.pathsep + path if path else "")
    env.update(extra)
    return env


@dataclass
class Context:
    """What a workload gets: the scale, a private temporary folder, the peer's status."""

    scale: Scale
    workdir: str
    peer_missing: str | None
    """None when eventsourcing imports; else the cell text for its columns."""
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr))
    _fixtures: dict[tuple[str, int], str] = field(default_factory=dict)
    _counter: int = 0

    def tag(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def run_command(self, argv: Sequence[str], env: Mapping[str, str]) -> Sample:
        """Start argv as a process; the sample is its wall time in ms."""
        run = run_process(argv, env)
        if run.returncode != 0:
            raise BenchError(
                f"{' '.join(argv)} exited {run.returncode}: {run.stderr.decode(errors='replace')}"
            )
        return Sample(run.seconds * 1000, run.rss_kib)

    def throughput(
        self, key: str, task: Callable[[TaskSpec], TaskResult], events: int, source: str = ""
    ) -> Variant:
        """A variant running `task` on `events` in a worker; its figure is events/s."""

        def run(number: int) -> Sample:
            spec = TaskSpec(self.workdir, self.tag(f"r{number}-"), events, source)
            result, rss = self._run_task(task, spec)
            return Sample(result.events / result.seconds, rss, result.info)

        return Variant(key, run)

    def run_task(
        self, task: Callable[[TaskSpec], TaskResult], events: int, source: str = ""
    ) -> tuple[TaskResult, int]:
        """Run `task` once in a worker: its result and the worker's peak RSS (KiB)."""
        return self._run_task(task, TaskSpec(self.workdir, self.tag("t-"), events, source))

    def fixture(self, build: Callable[[TaskSpec], TaskResult], events: int) -> str:
        """The path of a prebuilt file of `events` events, built once per run by `build`
        in a worker (untimed; it reports the path as info["path"]) and shared by every
        row that asks for the same one."""
        key = (f"{build.__module__}.{build.__name__}", events)
        if key not in self._fixtures:
            self.log(f"  building {build.__name__} ({events:,} events)")
            spec = TaskSpec(self.workdir, self.tag("fixture-"), events)
            result, _ = self._run_task(build, spec)
            self._fixtures[key] = result.info["path"]
        return self._fixtures[key]

    def _run_task(
        self, task: Callable[[TaskSpec], TaskResult], spec: TaskSpec
    ) -> tuple[TaskResult, int]:
        argv = [
            sys.executable,
            "-m",
            "benchmarks.worker",
            f"{task.__module__}:{task.__name__}",
            json.dumps(spec.to_json()),
        ]
        run = run_process(argv, child_env())
        if run.returncode != 0:
            raise BenchError(
                f"task {task.__name__} exited {run.returncode}:\n"
                f"{run.stderr.decode(errors='replace')}"
            )
        return TaskResult(**json.loads(run.stdout)), run.rss_kib
