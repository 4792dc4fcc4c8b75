"""The benchmark suite runs end to end at its tiny scale and reports every row.

No timing is asserted: this only proves that `make bench` works and that every
registered workload still produces the rows it declares. Part of the default suite
(not marked slow): it takes a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.harness import REGISTRY
from benchmarks.peer import NOT_INSTALLED, missing
from benchmarks.workloads import APPENDS, STARTUP

ROOT = Path(__file__).resolve().parent.parent


def _table_rows(report: str) -> dict[str, list[str]]:
    rows = {}
    for line in report.splitlines():
        if line.startswith("| ") and not line.startswith("| workload "):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def test_tiny_scale_reports_every_registered_row(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--scale", "tiny", "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr

    declared = [label for workload in REGISTRY for label in workload.rows]
    assert declared, "no workloads registered"
    printed = _table_rows(run.stdout)
    assert list(printed) == declared
    written = (out / "benchmarks.md").read_text(encoding="utf-8")
    assert _table_rows(written) == printed
    for cells in printed.values():
        assert len(cells) == 8
    for label in (STARTUP, APPENDS):
        assert printed[label][-1] in ("met", "not met")

    peer_cells = [printed[label][4] for label in (STARTUP, APPENDS)]
    if missing() is None:
        assert all("peer " in cell for cell in peer_cells)
    else:
        assert all(cell == NOT_INSTALLED for cell in peer_cells)

    assert (out / "benchmarks.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
