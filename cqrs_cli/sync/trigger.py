"""After a `cqrs` write: leave a catch-up process behind, as `git gc --auto` does.

The write is committed before this runs, and nothing here can change its outcome or
its exit code: every failure to start a catch-up is swallowed (the projection is then
caught up by the next write, `cqrs sync`, or a read's --sync). It costs a try of the
catch-up lock (tens of microseconds) and, when the lock was free, one posix_spawn
(about 0.4 ms here: vfork and exec, whatever the writer's size), and it imports
nothing but os and fcntl: subprocess, with its selectors and signal imports, would
cost more than the spawn.

The child gets the locked descriptor (the lock goes with it), /dev/null for its
standard streams and a session of its own, so a Ctrl-C at the terminal or a closed
pipe of the writer's does not reach it. The writer does not wait for it: once the
writer exits, init adopts and reaps it (in a container, that takes an init process,
e.g. `docker run --init`).

Run from the `cqrs` command (`defer_to_exit`), the child is a shell that waits for
the writer to exit (the end of a pipe only the writer holds) before it starts Python:
on a busy machine the 20-25 ms of CPU of Python's start-up, run beside the writer's
own exit, had made the write 13-20% slower, against 3-10% with the wait (tests'
A/B runs of `cqrs item create`, 25-40 of each, 2 cores under load). It also runs at
nice 10: background work yields to commands people wait for.
"""

from __future__ import annotations

import os
import sys

from .catchup_lock import claim, release, wanted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..paths import StorePaths

NICE = 10
SHELL = "/bin/sh"
defer_to_exit = False
"""Set by the `cqrs` entry point (cli/main.py), whose process ends as soon as the command
returns: the catch-up then starts once it has. In-process callers (tests) start it at once."""
_until_exit: list[int] = []
spawned: list[int] = []
"""Catch-ups started by this process. A `cqrs` process exits at once and leaves them to
init; a process that runs the CLI in-process (the tests) reaps them with reap()."""


def after_write(paths: StorePaths) -> int | None:
    """Start a detached catch-up of `paths`' projection unless one is running or
    CQRS_CATCHUP turns them off; its pid, or None. Never raises: the write it follows
    is committed, and its exit code is not this function's to change."""
    try:
        return _start(paths)
    except Exception:
        return None


FROM_ENVIRONMENT = "-"
"""The catch-up's --journal when the locator is a server's: it is passed in the
environment (JOURNAL_VARIABLE), readable only by its owner, not on the command line,
which any local user sees in `ps`, with the locator's password."""
JOURNAL_VARIABLE = "CQRS_CATCHUP_JOURNAL"


def _environment(journal: str) -> dict[str, str] | os._Environ[str]:
    if "://" not in journal:
        return os.environ
    return {**os.environ, JOURNAL_VARIABLE: journal}


def _start(paths: StorePaths) -> int | None:
    if not wanted(paths.journal, paths.projection):
        return None
    fd = claim(paths.projection)
    if fd is None:
        return None  # one is running: it takes this write too (catchup_lock.py)
    try:
        os.set_inheritable(fd, True)
        argv = [
            sys.executable,
            # -P: the writer's current folder is not put on sys.path, where a json.py
            # or a cqrs_cli/ of the user's would shadow ours.
            "-P",
            "-m",
            "cqrs_cli.sync.detached",
            "--lock-fd",
            str(fd),
            "--journal",
            os.path.abspath(paths.journal) if "://" not in paths.journal else FROM_ENVIRONMENT,
            "--projection",
            os.path.abspath(paths.projection),
        ]
        null = os.devnull
        stdin: tuple[int, int, str, int, int] | tuple[int, int, int]
        stdin = (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0)
        until_exit = None
        if defer_to_exit and os.path.exists(SHELL):
            # The child waits in a shell (a millisecond's start) until this process has
            # exited and closed the pipe's other end, and only then starts Python: its
            # start-up no longer competes with the writer's own exit.
            until_exit, writer_end = os.pipe()
            stdin = (os.POSIX_SPAWN_DUP2, until_exit, 0)
            argv = [SHELL, "-c", 'read _; exec "$@" </dev/null', "sh", *argv]
        try:
            pid = os.posix_spawn(
                argv[0],
                argv,
                _environment(paths.journal),
                file_actions=[
                    stdin,
                    (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0),
                ],
                setsid=True,
            )
        finally:
            if until_exit is not None:
                os.close(until_exit)
        if until_exit is not None:
            _until_exit.append(writer_end)  # closed by the kernel as this process ends
    except BaseException:
        # Not started (no memory for a process, say): release the lock, and with it the
        # catch-up, to whoever writes next.
        release(fd)
        raise
    os.close(fd)  # the child's copy holds the lock now
    try:
        # Background work yields to the commands people and scripts are waiting for.
        # (posix_spawn's scheduler option refuses SCHED_BATCH here: EINVAL.)
        os.setpriority(os.PRIO_PROCESS, pid, NICE)
    except OSError:
        pass
    spawned.append(pid)
    return pid


def reap(timeout: float = 30.0) -> list[int]:
    """Wait for the catch-ups this process started (at most `timeout` seconds each);
    their exit statuses. For programs that run `cqrs` commands in-process."""
    import time

    while _until_exit:
        os.close(_until_exit.pop())  # as this process's exit would: the children go on
    statuses: list[int] = []
    while spawned:
        pid = spawned.pop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # reaped elsewhere
            if done:
                statuses.append(os.waitstatus_to_exitcode(status))
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
    return statuses
