"""python -m benchmarks [--scale tiny|quick|full] [--output DIR] [--only NAME ...]

Runs every registered workload in a private temporary folder, prints the report
(Markdown) on stdout, progress on stderr, and writes DIR/benchmarks.md and
DIR/benchmarks.png (DIR: the repository's docs/ unless --output says otherwise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from . import peer, workloads
from .harness import PACKAGE_ROOT, REGISTRY, BenchError, Context, Row
from .png import chart
from .report import environment, format_report
from .scales import SCALES

_ = workloads  # registers the workloads


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument(
        "--output",
        default=str(PACKAGE_ROOT / "docs"),
        help="folder for benchmarks.md and benchmarks.png (default: docs/)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[w.name for w in REGISTRY],
        help="run only this workload (repeatable)",
    )
    return parser.parse_args(argv)


def compile_bytecode() -> None:
    """Write cqrs's .pyc files first, as any installed package has them. With
    PYTHONDONTWRITEBYTECODE set (as in some sandboxes and CI runners) an editable install
    never gets them, and every measured process would compile every module it imports
    (here: about 20 ms more per `cqrs item create`), which no user pays."""
    import compileall

    import cqrs_cli

    compileall.compile_dir(os.path.dirname(cqrs_cli.__file__), quiet=1)


def run(argv: list[str]) -> int:
    args = parse(argv)
    scale = SCALES[args.scale]
    chosen = [w for w in REGISTRY if not args.only or w.name in args.only]
    started = time.perf_counter()
    rows: list[Row] = []
    compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="cqrs-bench-") as workdir:
        ctx = Context(scale, workdir, peer.missing())
        for item in chosen:
            ctx.log(f"[{item.name}] running")
            began = time.perf_counter()
            produced = item.run(ctx)
            ctx.log(f"[{item.name}] done in {time.perf_counter() - began:.0f} s")
            labels = tuple(row.label for row in produced)
            if labels != item.rows:
                raise RuntimeError(
                    f"workload {item.name} returned rows {labels}, declared {item.rows}"
                )
            rows.extend(produced)
    env = environment(scale.name, peer.version(), time.perf_counter() - started)
    text = format_report(rows, env)
    sys.stdout.write(text)
    sys.stdout.flush()
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "benchmarks.md"), "w", encoding="utf-8") as out:
        out.write(text)
    with open(os.path.join(args.output, "benchmarks.png"), "wb") as out:
        out.write(chart(rows, f"cqrs benchmarks ({scale.name} scale)"))
    return 0


def main(argv: list[str]) -> int:
    try:
        return run(argv)
    except BenchError as exc:
        sys.stderr.write(f"benchmarks: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
