"""Start one command and report its wall time and its own peak RSS to a file.

    python -I -S launcher.py REPORT_FILE COMMAND [ARG ...]

Why a launcher: on Linux a child's ru_maxrss is at least the RSS of the process that
forked it (exec keeps the larger of the old and new high-water marks, and a vfork'd
child's old memory is its parent's), so children of the harness would all report the
harness's own size. This process, started with -I -S, is about 8 MiB: smaller than any
Python process it measures. It imports nothing but `os` and `time`.
"""

import os
import sys
import time


def main() -> None:
    report, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            os.write(2, f"cannot run {argv[0]}: {exc}\n".encode())
        os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    with open(report, "w") as out:
        out.write(f"{seconds!r} {usage.ru_maxrss}\n")
    code = os.waitstatus_to_exitcode(status)
    sys.exit(code if code >= 0 else 128 - code)  # killed by a signal: as a shell says


main()
