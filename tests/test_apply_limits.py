"""`cqrs apply` and `journal import` on input no valid file holds, and on a reader that
goes away: memory stays bounded, nothing is cut short without a word, and the summary
says what was done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from common import child_env, event_count, one_error_line

# Reads a 64 MB line from a generator on stdin, through `cqrs apply`; prints the exit
# code, stderr and the child's peak RSS (KiB), as JSON.
HUGE_LINE = r"""
import json, os, resource, subprocess, sys
chunk = b"x" * (1 << 20)
cqrs = [sys.argv[1], *sys.argv[2:]]
proc = subprocess.Popen(cqrs, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
try:
    proc.stdin.write(b'{"op":"create","id":"ok","description":"fine"}\n')
    proc.stdin.write(b'{"op":"create","id":"big","description":"')
    for _ in range(64):
        proc.stdin.write(chunk)
    proc.stdin.write(b'"}\n{"op":"create","id":"after","description":"fine"}\n')
    proc.stdin.close()
except BrokenPipeError:
    pass
out, err = proc.stdout.read(), proc.stderr.read()
code = proc.wait()
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": code, "err": err.decode(), "rss_kib": peak}))
"""


def apply_huge_line(cqrs_exe: str, *argv: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", HUGE_LINE, cqrs_exe, "apply", *argv],
        capture_output=True,
        env=child_env(),
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_huge_line_is_refused_while_it_is_read_and_writes_nothing(
    cqrs_exe: str, store: Path
) -> None:
    result = apply_huge_line(cqrs_exe)
    assert result["code"] == 2
    line = one_error_line(str(result["err"]))
    assert "line 2: longer than 8 MiB" in line
    # The line was 64 MiB: it never was in memory whole (about 30 MiB is the process).
    assert isinstance(result["rss_kib"], int) and result["rss_kib"] < 60 * 1024
    assert not (store / "journal.db").exists() or event_count(store / "journal.db") == 0


def test_with_each_a_huge_line_fails_alone(cqrs_exe: str, store: Path) -> None:
    result = apply_huge_line(cqrs_exe, "--each")
    assert result["code"] == 2
    err = str(result["err"])
    assert "line 2: longer than 8 MiB" in err
    assert "Applied 2 commands: 2 created" in err and "1 failed" in err
    assert event_count(store / "journal.db") == 2


def test_a_reader_that_goes_away_does_not_cut_a_batch_short(
    cqrs_exe: str, store: Path, tmp_path: Path
) -> None:
    commands = tmp_path / "commands.ndjson"
    commands.write_bytes(b"".join(b'{"op":"create","id":"item-%d"}\n' % n for n in range(5000)))
    for each, total in ((True, 5000), (False, 10000)):
        argv = [cqrs_exe, "apply", "--json", str(commands)]
        if each:
            argv.insert(2, "--each")
        else:
            # The second run: every line already exists... so make them updates.
            commands.write_bytes(
                b"".join(
                    b'{"op":"update","id":"item-%d","description":"x"}\n' % n for n in range(5000)
                )
            )
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env()
        )
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline()  # `| head -1`
        process.stdout.close()
        err = process.stderr.read().decode()
        assert process.wait(timeout=120) == 0, err
        assert "stdout was closed" in err and "Applied 5000 commands" in err, err
        assert event_count(store / "journal.db") == total
    assert os.path.exists(store / "journal.db")
