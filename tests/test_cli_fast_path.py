"""The fast path (cqrs_cli/cli/fast.py) must be invisible: every command line gives the
same exit code, stdout and stderr whether it parses the line or typer does. And the hot
commands must not import the heavy modules the fast path exists to avoid."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from cqrs_cli.cli import fast
from cqrs_cli.cli.main import run
from cqrs_cli.cli.state import state
from cqrs_cli.write.command_service import CommandService


class Case(NamedTuple):
    argv: list[str]
    fast: bool  # whether the fast path should run it (else it hands it to typer)
    existing: tuple[str, ...] = ()  # items created before the command
    stdin: bytes | None = None


# {store} is the test's fresh store folder.
CASES: dict[str, Case] = {
    "create": Case(["item", "create", "Item1"], True),
    "create-description-after": Case(["item", "create", "Item1", "-d", "First item"], True),
    "create-options-before-id": Case(
        ["item", "create", "--json", "--description", "x", "Item1"], True
    ),
    "create-inline-value": Case(["item", "create", "Item1", "--description=a=b"], True),
    "create-empty-inline": Case(["item", "create", "Item1", "--description="], True),
    "create-double-dash": Case(["item", "create", "-d", "x", "--", "-dash-id"], True),
    "create-dash-id": Case(["item", "create", "-"], True),
    "create-stdin": Case(["item", "create", "Item1", "-d", "-"], True, stdin=b"from\nstdin\n"),
    "create-exists": Case(["item", "create", "Item1"], True, existing=("Item1",)),
    "create-json": Case(["item", "create", "Item1", "--json"], True),
    "create-dry-run": Case(["item", "create", "Item1", "--dry-run"], True),
    "create-key": Case(["item", "create", "Item1", "--idempotency-key", "k"], True),
    "create-empty-key": Case(["item", "create", "Item1", "--idempotency-key="], True),
    "create-invalid-id": Case(["item", "create", "bad\x1bid"], True),
    "create-surrogate-id": Case(["item", "create", "bad\udcffid"], True),
    "update": Case(["item", "update", "Item1", "new"], True, existing=("Item1",)),
    "update-options-first": Case(
        ["item", "update", "--expect-version", "1", "Item1", "new"], True, existing=("Item1",)
    ),
    "update-expect-mismatch": Case(
        ["item", "update", "Item1", "new", "--expect-version=7"], True, existing=("Item1",)
    ),
    # Out of range: the fast path leaves it to typer, whose option declares the range.
    "update-negative-version": Case(
        ["item", "update", "Item1", "x", "--expect-version", "-1"], False
    ),
    "list-huge-limit": Case(["item", "list", "--limit", "9223372036854775808"], False),
    "update-not-found": Case(["item", "update", "Item1", "new"], True),
    "update-stdin": Case(["item", "update", "Item1", "-"], True, ("Item1",), b"piped"),
    "delete": Case(["item", "delete", "Item1", "--json"], True, existing=("Item1",)),
    "global-journal": Case(["--journal", "{store}/j.db", "item", "create", "Item1"], True),
    "global-journal-inline": Case(["--journal={store}/j.db", "-q", "item", "create", "A"], True),
    "global-home-quiet": Case(["-q", "--home", "{store}/h", "item", "create", "Item1"], True),
    "global-same-files": Case(
        ["--journal", "{store}/x.db", "--projection", "{store}/x.db", "item", "create", "A"], True
    ),
    "global-debug": Case(["--debug", "item", "delete", "Item1"], True),
    "quiet-after-command": Case(["item", "update", "Item1", "new", "-q"], True, ("Item1",)),
    "sync-after-write": Case(["item", "create", "Item1", "--sync", "--quiet"], True),
    # Everything below is for typer: errors and forms the fast path does not parse.
    "bad-int": Case(["item", "create", "Item1", "--expect-version", "abc"], False),
    "bad-int-inline": Case(["item", "create", "Item1", "--expect-version="], False),
    "unknown-option": Case(["item", "create", "Item1", "--colour"], False),
    "unknown-global": Case(["--colour", "item", "create", "Item1"], False),
    "global-value-after-command": Case(["item", "create", "Item1", "--home", "x"], False),
    "missing-id": Case(["item", "create"], False),
    "missing-description": Case(["item", "update", "Item1"], False),
    "missing-value": Case(["item", "create", "Item1", "-d"], False),
    "missing-global-value": Case(["--journal"], False),
    "extra-argument": Case(["item", "delete", "Item1", "Item2"], False),
    "extra-after-double-dash": Case(["item", "create", "Item1", "--", "-d", "x"], False),
    "flag-with-value": Case(["item", "create", "Item1", "--json=yes"], False),
    "short-attached-value": Case(["item", "create", "Item1", "-dattached"], False),
    "unknown-command": Case(["item", "rename", "Item1"], False),
    "version": Case(["--version"], False),
}


def normalise(text: str, store: Path) -> str:
    """The output with the store's path and per-run values (ids, times, hashes) masked."""
    text = text.replace(str(store), "<store>")
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            line = json.dumps(mask(json.loads(line)), sort_keys=True)
        lines.append(line)
    return "\n".join(lines)


VOLATILE = {"event_id", "recorded_at", "command_id", "prev_hash", "hash"}


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "*" if k in VOLATILE else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


class Outcome(NamedTuple):
    code: int
    out: str
    err: str
    fast_ran: bool


def run_in_fresh_store(
    case: Case,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    force_typer: bool,
) -> Outcome:
    monkeypatch.setenv("CQRS_HOME", str(store))
    with CommandService(store) as service:
        for item_id in case.existing:
            service.create_item(item_id, "existing")
    for name in ("journal", "projection", "home"):
        monkeypatch.setattr(state, name, None)
    monkeypatch.setattr(state, "quiet", False)
    monkeypatch.setattr(state, "debug", False)
    if case.stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin)))
    results: list[int | None] = []
    real_dispatch = fast.dispatch

    def spy(argv: list[str]) -> int | None:
        result = None if force_typer else real_dispatch(argv)
        results.append(result)
        return result

    monkeypatch.setattr(fast, "dispatch", spy)
    capsys.readouterr()
    code = run([arg.replace("{store}", str(store)) for arg in case.argv])
    out, err = capsys.readouterr()
    # The fast path ran the command if it returned a code or raised (a typed error).
    return Outcome(code, normalise(out, store), normalise(err, store), results != [None])


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_fast_path_and_typer_give_identical_results(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fast_run = run_in_fresh_store(case, tmp_path / "a", monkeypatch, capsys, force_typer=False)
    typer_run = run_in_fresh_store(case, tmp_path / "b", monkeypatch, capsys, force_typer=True)
    assert fast_run.fast_ran is case.fast
    assert not typer_run.fast_ran
    assert fast_run[:3] == typer_run[:3]


def test_the_parity_table_covers_success_and_every_error_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = {
        run_in_fresh_store(case, tmp_path / name, monkeypatch, capsys, force_typer=False).code
        for name, case in CASES.items()
    }
    assert codes == {0, 2, 3, 4}


HEAVY = ("typer", "rich", "click", "pydantic", "dataclasses", "typing", "uuid")

# Runs one command line the way the `cqrs` script does, then reports what was imported.
PROBE = """
import sys
from cqrs_cli.cli.main import run
code = run(sys.argv[1:])
sys.stdout.flush()
sys.stderr.write("MODULES " + " ".join(sorted(sys.modules)) + "\\n")
sys.exit(code)
"""


def imported_by(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    last = result.stderr.splitlines()[-1]
    assert last.startswith("MODULES "), result.stderr
    return result, set(last.split()[1:])


def test_the_hot_write_commands_import_nothing_heavy() -> None:
    for argv, stdout in [
        (["item", "create", "X", "-d", "a"], "Item created: X\n"),
        (["item", "update", "X", "b", "--json"], None),
        (["-q", "item", "delete", "X"], "Item deleted: X\n"),
    ]:
        result, modules = imported_by(*argv)
        assert result.returncode == 0, result.stderr
        if stdout is not None:
            assert result.stdout == stdout
        heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
        assert heavy == [], f"{argv} imported {heavy}"


def test_the_probe_does_see_typer_when_typer_runs() -> None:
    # Guards the test above against passing vacuously.
    result, modules = imported_by("item", "create", "X", "--no-such-option")
    assert result.returncode == 2
    assert "typer" in modules
