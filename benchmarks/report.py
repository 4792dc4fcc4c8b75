"""The results as text: the environment, the table, and what each row ran.

Pure `format_*` functions; `__main__` prints the report and writes it to a file.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
import tempfile
import time

from .harness import NO_PEER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .harness import Measured, Row
    from .stats import Summary

COLUMNS = (
    "workload",
    "figure",
    "baseline",
    "x baseline",
    "x eventsourcing",
    "peak RSS",
    "goal",
    "met",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _filesystem(path: str) -> str:
    """The type of the file system holding `path` (fsync costs depend on it)."""
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and path.startswith(fields[1]) and len(fields[1]) > len(best):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def environment(scale: str, peer_version: str, seconds: float) -> list[tuple[str, str]]:
    """What the figures were measured on."""
    from cqrs_cli import __version__

    tmp = tempfile.gettempdir()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        ("date", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())),
        ("machine", f"{platform.platform()}, {os.cpu_count()} CPUs, {_cpu_model()}"),
        ("load average at the end", load),
        ("temporary folder", f"{tmp} ({_filesystem(os.path.realpath(tmp))})"),
        ("Python", f"{platform.python_implementation()} {sys.version.split()[0]}"),
        ("SQLite", sqlite3.sqlite_version),
        ("cqrs", __version__),
        ("eventsourcing", peer_version),
        ("scale", scale),
        ("run time", f"{seconds:.0f} s"),
    ]


def format_number(value: float) -> str:
    """Three significant figures, thousands separated: 4,930; 41.2; 0.123."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        digits = len(str(int(abs(value)))) - 3
        return f"{round(value, -digits):,.0f}"
    return f"{value:.3g}"


def format_summary(summary: Summary, suffix: str = "") -> str:
    return (
        f"{format_number(summary.median)}{suffix} "
        f"({format_number(summary.low)}-{format_number(summary.high)})"
    )


def format_figure(measured: Measured) -> str:
    return format_summary(measured.figure, f" {measured.unit}")


def format_ratio(ratio: Summary) -> str:
    return format_summary(ratio, "x")


def format_rss(row: Row) -> str:
    text = f"{row.subject.rss_mib.median:.0f} MiB"
    others = [
        f"{name} {side.rss_mib.median:.0f}"
        for name, side in (("baseline", row.baseline), ("peer", row.peer))
        if side is not None
    ]
    return f"{text} ({', '.join(others)})" if others else text


def format_cells(row: Row) -> list[str]:
    baseline = row.baseline_note
    if row.baseline is not None:
        baseline = format_figure(row.baseline)
    vs_baseline = format_ratio(row.vs_baseline) if row.vs_baseline else "-"
    if row.peer is not None and row.vs_peer is not None:
        vs_peer = f"{format_ratio(row.vs_peer)}; peer {format_figure(row.peer)}"
    else:
        vs_peer = row.peer_note or NO_PEER
    goal = row.goal.text if row.goal else row.goal_note
    met = {None: "-", True: "met", False: "not met"}[row.met]
    figure = format_figure(row.subject)
    if row.goal is not None and row.goal.p90_limit is not None:
        figure += f", p90 {format_number(row.subject.figure.p90)}"
    return [
        row.label,
        figure,
        baseline,
        vs_baseline,
        vs_peer,
        format_rss(row),
        goal,
        met,
    ]


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table, one line per row."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(_escape(c) for c in format_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def format_notes(rows: Sequence[Row]) -> str:
    """What each row's figure, baseline and peer ran, with what the tasks reported."""
    lines = []
    for row in rows:
        lines.append(f"- **{row.label}**")
        for role, side in (("figure", row.subject), ("baseline", row.baseline), ("peer", row.peer)):
            if side is not None:
                extra = f" ({'; '.join(side.notes)})" if side.notes else ""
                lines.append(f"  - {role}: {side.name}, {side.figure.count} runs{extra}")
    return "\n".join(lines)


def format_report(rows: Sequence[Row], env: Sequence[tuple[str, str]]) -> str:
    return "\n".join(
        [
            "# cqrs benchmarks",
            "",
            "Generated by `make bench` (`python -m benchmarks`); do not edit by hand.",
            "",
            *[f"- {name}: {value}" for name, value in env],
            "",
            "Figures are medians with the min-max range over interleaved rounds. Ratios are",
            "taken within each round (the row's figure over the other side's, both measured",
            "back to back) and then summarised: for ms lower is better, for events/s higher",
            "is better. Peak RSS is the median over runs of each process's own maximum;",
            "every variant runs in its own process.",
            "",
            format_table(rows),
            "",
            "## What each row ran",
            "",
            format_notes(rows),
            "",
            "![ratios](benchmarks.png)",
            "",
        ]
    )
