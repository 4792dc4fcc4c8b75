"""Helpers shared by the reliability and security tests (load, crashes, faults, wrong
files, hostile input, security): running `cqrs` under a changed environment (a file-size
limit, another user, a pseudo-terminal, /dev/full), reading a journal the way any other
program would, and telling whether output is safe to show on a terminal."""

from __future__ import annotations

import hashlib
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

from scripting_helpers import SUBPROCESS_TIMEOUT, one_error_line

Arg = str | bytes

CRASH_HOOK_ENV = "CQRS_TEST_CRASH_AT"


def child_env(home: Path | None = None, **extra: str) -> dict[str, str]:
    """This test's environment for a child process, without the sync crash hook;
    CQRS_HOME set to `home` when given."""
    env = dict(os.environ)
    env.pop(CRASH_HOOK_ENV, None)
    if home is not None:
        env["CQRS_HOME"] = str(home)
    env.update(extra)
    return env


def installed_cqrs() -> str:
    """The `cqrs` console script of this environment (what the cqrs_exe fixture gives,
    for fixtures wider than one test)."""
    exe = Path(sys.executable).parent / "cqrs"
    assert exe.exists(), f"cqrs is not installed in {exe.parent}"
    return str(exe)


def run_cqrs(
    exe: str,
    *argv: Arg,
    stdin: bytes = b"",
    env: Mapping[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = SUBPROCESS_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed `cqrs` in its own process; argv may hold bytes (invalid UTF-8)."""
    return subprocess.run(
        [exe, *argv],
        input=stdin,
        capture_output=True,
        env=child_env() if env is None else dict(env),
        preexec_fn=preexec_fn,
        timeout=timeout,
        check=False,
    )


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


def read_only(path: str | Path) -> sqlite3.Connection:
    """A plain read-only connection, as another program opens the file."""
    quoted = str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return sqlite3.connect(f"file:{quoted}?mode=ro", uri=True, isolation_level=None, timeout=30)


def event_count(journal: str | Path) -> int:
    """How many events the journal holds (0 with no journal file)."""
    if not Path(journal).exists():
        return 0
    conn = read_only(journal)
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
    finally:
        conn.close()
    assert isinstance(count, int)
    return count


def integrity_check(path: str | Path) -> list[tuple[object, ...]]:
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
            (str(p.relative_to(target)), hashlib.sha256(p.read_bytes()).hexdigest())
            for p in target.rglob("*")
            if p.is_file()
        )
    return hashlib.sha256(target.read_bytes()).hexdigest()


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


def python_child(
    script: str, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """A Python snippet in a process of its own, with this interpreter; text pipes."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env() if env is None else dict(env),
    )
