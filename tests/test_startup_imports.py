"""Start-up is a feature: the hot commands, run as the installed `cqrs` script in a fresh
interpreter, must not import the heavy modules (seen with `python -X importtime`)."""

from __future__ import annotations

import subprocess
import sys

from common import SUBPROCESS_TIMEOUT

HEAVY = ("rich", "typer", "click", "pydantic", "dataclasses", "typing", "uuid", "inspect")


def imports_of(exe: str, *argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `cqrs ARGV` (stdout a pipe) under -X importtime; (result, modules imported).
    The report goes to stderr, one `import time: self | cumulative | module` line per
    module; the command's own stderr lines are left in result.stderr."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", exe, *argv],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    modules: set[str] = set()
    other: list[str] = []
    for line in result.stderr.splitlines(keepends=True):
        if line.startswith("import time:"):
            name = line.rsplit("|", 1)[-1].strip()
            if name != "imported package":
                modules.add(name)
        else:
            other.append(line)
    result.stderr = "".join(other)
    assert "cqrs_cli.cli.main" in modules  # the report is being read at all
    return result, modules


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_the_hot_commands_import_nothing_heavy(cqrs_exe: str) -> None:
    steps = [
        (["item", "create", "X", "-d", "first"], 0, "Item created: X\n"),
        (["item", "update", "X", "second"], 0, "Item updated: X\n"),
        (["item", "create", "Y"], 0, "Item created: Y\n"),
        (["item", "update", "X", "third", "--json", "--expect-version", "2"], 0, None),
        (["sync"], 0, None),  # not a hot command: it makes the projection the reads need
        (["item", "get", "X"], 0, "X: third\n"),
        (["item", "get", "X", "--json"], 0, None),
        (["item", "list"], 0, "X\nY\n"),
        (["item", "list", "--limit", "1"], 0, "X\n"),
        (["item", "delete", "Y"], 0, "Item deleted: Y\n"),
        (["item", "get", "Nope"], 3, ""),  # errors stay light too
        (["item", "create", "X"], 4, ""),
    ]
    for argv, code, stdout in steps:
        result, modules = imports_of(cqrs_exe, *argv)
        assert result.returncode == code, (argv, result.stderr)
        if stdout is not None:
            assert result.stdout == stdout, argv
        if argv != ["sync"]:
            assert heavy_in(modules) == [], f"cqrs {' '.join(argv)} imported {heavy_in(modules)}"


def test_help_does_import_typer(cqrs_exe: str) -> None:
    # Guards the test above against passing because nothing could be seen.
    result, modules = imports_of(cqrs_exe, "--help")
    assert result.returncode == 0
    assert "Usage" in result.stdout
    assert "typer" in modules
    assert "typer" in heavy_in(modules)
