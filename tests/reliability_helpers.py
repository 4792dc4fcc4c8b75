"""Helpers specific to the reliability and security tests (load, crashes, faults, wrong
files, hostile input, security): a clean failure, a journal that verifies, the files
beside a database and what they hold, running `cqrs` under changed circumstances (a
file-size limit, a umask, another user, a pseudo-terminal), and telling whether output is
safe to show on a terminal. What every family of tests uses is in common.py."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path

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

_AS_NOBODY = """
import os, sys
# The interpreter and its standard library may live where `nobody` cannot read (under
# /root): import everything a command may need first, then drop privileges for good.
import contextlib, hashlib, json, signal, sqlite3, time, unicodedata
import cqrs_cli.cli.app, cqrs_cli.cli.fast, cqrs_cli.cli.main, cqrs_cli.cli.write_commands
import cqrs_cli.cli.read_commands, cqrs_cli.cli.sync_command, cqrs_cli.cli.journal_commands
import cqrs_cli.cli.events_output, cqrs_cli.cli.tables, cqrs_cli.read.query_service
import cqrs_cli.write.command_service, cqrs_cli.sync.runner, cqrs_cli.sync.bulk
import cqrs_cli.journal.verify, cqrs_cli.journal.sqlite_journal, cqrs_cli.projection.store
import cqrs_cli.domain.item, cqrs_cli.domain.codec
os.setgroups([])
os.setgid(int(sys.argv[1]))
os.setuid(int(sys.argv[1]))
assert os.geteuid() != 0
from cqrs_cli.cli.main import run
sys.exit(run(sys.argv[2:]))
"""


def can_drop_privileges() -> bool:
    """True when this process may switch a child to another user (it runs as root)."""
    return hasattr(os, "setuid") and os.geteuid() == 0


def run_as_nobody(
    *argv: str, env: Mapping[str, str], timeout: float = SUBPROCESS_TIMEOUT
) -> subprocess.CompletedProcess[bytes]:
    """`cqrs ARGV` in a process that runs as the user nobody (after its imports)."""
    return subprocess.run(
        [sys.executable, "-c", _AS_NOBODY, str(NOBODY), *argv],
        capture_output=True,
        env=dict(env),
        cwd="/",
        timeout=timeout,
        check=False,
    )
