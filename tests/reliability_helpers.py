"""Helpers specific to the reliability and security tests (load, crashes, faults, wrong
files, hostile input, security): a clean failure, a journal that verifies, the files
beside a database and what they hold, running `cqrs` under changed circumstances (a
file-size limit, a umask, another user, a pseudo-terminal), and telling whether output is
safe to show on a terminal. What every family of tests uses is in common.py."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from common import SUBPROCESS_TIMEOUT, Arg, one_error_line, read_only, run_cqrs, sha256_of


def assert_clean_failure(
    result: subprocess.CompletedProcess[bytes], code: int, *needles: str
) -> str:
    """The process failed with `code`, printed nothing on stdout and exactly one error
    line (no traceback) on stderr containing every needle; that line."""
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert result.stdout == b"", result.stdout[:2000]
    line = one_error_line(result.stderr, starts="cqrs")
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# --- Files ---------------------------------------------------------------------------------


def integrity_check(path: str | Path) -> list[tuple[object, ...]]:
    """What SQLite's own integrity check says of the file: [("ok",)] when sound."""
    conn = read_only(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


def assert_journal_verifies(exe: str, journal: str | Path) -> dict[str, object]:
    """`cqrs journal verify` passes on `journal`, and SQLite's own integrity check too;
    the verify report."""
    assert integrity_check(journal) == [("ok",)]
    result = run_cqrs(exe, "--journal", str(journal), "journal", "verify", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report, dict) and report["ok"] is True, report
    return report


SIDE_SUFFIXES = ("-wal", "-shm", "-journal")


def side_files(path: str | Path) -> list[str]:
    """The SQLite side files (-wal, -shm, -journal) present beside `path`."""
    return [suffix for suffix in SIDE_SUFFIXES if os.path.lexists(f"{path}{suffix}")]


def fingerprint(path: str | Path) -> object:
    """What a file (its bytes' hash) or a folder (its names and their hashes) holds:
    equal before and after means nothing was changed."""
    target = Path(path)
    if target.is_dir():
        return sorted(
            (str(p.relative_to(target)), sha256_of(p)) for p in target.rglob("*") if p.is_file()
        )
    return sha256_of(target)


def checkpoint_wal(path: str | Path) -> None:
    """Copy the WAL into the database file and empty it, so that the main file alone
    holds everything (a template to copy)."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# --- Terminal safety --------------------------------------------------------------------------

_SGR = re.compile(r"\x1b\[[0-9;]*m")
"""Select Graphic Rendition: the colour and bold sequences rich itself writes."""

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def terminal_unsafe(output: str | bytes, *, allow_sgr: bool = False) -> list[str]:
    """The characters in `output` a terminal may act on (C0 controls but newline and
    tab, DEL, C1 controls, format characters such as bidi overrides and zero-width
    ones, line separators, undecodable bytes), as escapes; [] if there are none.
    `allow_sgr` first removes the colour sequences rich writes on a terminal."""
    text = output.decode("utf-8", "surrogateescape") if isinstance(output, bytes) else output
    if allow_sgr:
        text = _SGR.sub("", text)
    found = {
        ch for ch in text if ch not in "\n\t" and unicodedata.category(ch) in _UNSAFE_CATEGORIES
    }
    return sorted(ch.encode("unicode_escape", "backslashreplace").decode() for ch in found)


def assert_terminal_safe(output: str | bytes, *, allow_sgr: bool = False) -> None:
    """Fails the test if `output` holds any character terminal_unsafe() finds."""
    unsafe = terminal_unsafe(output, allow_sgr=allow_sgr)
    shown = output[:3000]
    assert not unsafe, f"raw {unsafe} in human output: {shown!r}"


def run_on_terminal(
    argv: list[Arg], env: Mapping[str, str], *, timeout: float = SUBPROCESS_TIMEOUT
) -> tuple[int, bytes, bytes]:
    """Run argv with stdout on a pseudo-terminal (so cqrs draws its tables) and stderr
    on a pipe: (exit code, what the terminal received, stderr). Output processing is off
    on the terminal, so a CR in the output is one the program wrote."""
    import termios

    primary, secondary = os.openpty()
    try:
        attributes = termios.tcgetattr(secondary)
        attributes[1] &= ~termios.OPOST
        termios.tcsetattr(secondary, termios.TCSANOW, attributes)
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE, env=dict(env)
        )
    finally:
        os.close(secondary)
    chunks: list[bytes] = []
    try:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.stderr is not None
        err = process.stderr.read()
        code = process.wait(timeout=timeout)
    finally:
        os.close(primary)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, b"".join(chunks), err


# --- Changed circumstances for a child process -------------------------------------------------


def file_size_limit(limit: int) -> Callable[[], None]:
    """A preexec_fn: files the child writes may not grow beyond `limit` bytes. SIGXFSZ is
    ignored, so a write past the limit fails with EFBIG (as on a full disk) instead of
    killing the process."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def with_umask(mask: int) -> Callable[[], None]:
    """A preexec_fn: the child creates its files under umask `mask`."""

    def apply() -> None:
        os.umask(mask)

    return apply


NOBODY = 65534

PRELOADED_PACKAGES = ("cqrs_cli", "typer", "rich")
"""What a command may import after it dropped privileges: cqrs itself, typer with the
click it vendors (typer._click), and rich, which draws typer's help and cqrs's tables."""


@functools.cache
def modules_a_command_may_import() -> tuple[str, ...]:
    """Every module of PRELOADED_PACKAGES (walked afresh, so that modules added or moved
    are covered without editing a list) and every module their source imports anywhere,
    inside functions too: the standard library and third-party modules they import
    lazily. `__main__` modules are left out: importing one runs a program."""
    names: set[str] = set()
    sources: list[Path] = []
    for package in PRELOADED_PACKAGES:
        root = importlib.import_module(package)
        names.add(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}.", onerror=_ignore):
            names.add(module.name)
        for folder in root.__path__:
            sources += Path(folder).rglob("*.py")
    for source in sources:
        try:
            tree = ast.parse(source.read_bytes(), str(source))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                # `from package import module`; most such names are not modules.
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return tuple(sorted(name for name in names if _is_module(name)))


def _ignore(name: str) -> None:
    """pkgutil.walk_packages's onerror: a subpackage that fails to import (an optional
    extra, another platform's module) is left out, as its modules are."""


def _is_module(name: str) -> bool:
    if "__main__" in name.split("."):
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


_AS_NOBODY = """
import importlib, os, sys, warnings
# The interpreter, its standard library and the venv may live where `nobody` cannot
# read (a clone under /root, a Python installed under /root): import everything a
# command may need first (the modules named in argv[2]; any that fails to import is
# skipped, as an optional extra), then drop privileges for good.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for name in sys.argv[2].split(","):
        try:
            importlib.import_module(name)
        except (Exception, SystemExit):
            pass
from cqrs_cli.cli.main import run
os.setgroups([])
os.setgid(int(sys.argv[1]))
os.setuid(int(sys.argv[1]))
assert os.geteuid() != 0
sys.exit(run(sys.argv[3:]))
"""


def can_drop_privileges() -> bool:
    """True when this process may switch a child to another user (it runs as root)."""
    return hasattr(os, "setuid") and os.geteuid() == 0


def run_as_nobody(
    *argv: str, env: Mapping[str, str], timeout: float = SUBPROCESS_TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    """`cqrs ARGV` in a process that runs as the user nobody (after its imports). Skips
    the test if the command still needed a module that nobody cannot read."""
    preload = ",".join(modules_a_command_may_import())
    result = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY, str(NOBODY), preload, *argv],
        capture_output=True,
        env=dict(env),
        cwd="/",
        timeout=timeout,
        check=False,
    )
    _skip_if_python_is_unreadable_by_nobody(result.stderr)
    return result


def _skip_if_python_is_unreadable_by_nobody(stderr: bytes) -> None:
    """Skips the test when the child, once it was nobody, failed to import a module that
    exists but lies in a folder nobody cannot enter (a module imported from C code, say,
    that modules_a_command_may_import() cannot see): that is this machine's layout, not
    a fault of cqrs. Any other import failure is left to fail the test."""
    missing = re.search(rb"No module named '([\w.]+)'", stderr)
    if missing is None:
        return
    name = missing[1].decode()
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None or not spec.origin or not os.path.isabs(spec.origin):
        return
    for folder in Path(spec.origin).parents:
        if not folder.stat().st_mode & 0o001:
            pytest.skip(
                f"cannot run cqrs as the user nobody here: after switching to nobody it "
                f"needed the module {name}, and nobody cannot read {spec.origin}, because "
                f"{folder} is closed to other users (no o+x); use a Python and a venv "
                "that other users can read to run this test"
            )
