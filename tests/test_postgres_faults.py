"""Guarantee 5 of the PostgreSQL journal: server faults lose nothing.

The server crashes (`pg_ctl stop -m immediate`: no shutdown, recovery from the WAL at
the next start) and restarts while writers append and a follower (`cqrs sync --follow`)
syncs. The writers are `cqrs item create/update` processes, each command with an
idempotency key and retried with the same key after an exit 6, and a Python process
that keeps one CommandService for all its writes. Afterwards:

- every command that exited 0 is in the journal, once, at the position it reported;
- every command that failed exited 6 with one line on stderr and no traceback;
- the follower said once per crash that the journal was unreachable and once that it
  was back, never exited, and its projection ends up with every write.

Each test owns its server, since it crashes it. The follow loop's reconnection is
backend-neutral: the last tests check it without a server, and that a follower of an
SQLite journal is unaffected.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from common import (
    SUBPROCESS_TIMEOUT,
    LineReader,
    child_env,
    one_error_line,
    read_only,
    run_cqrs,
    wait_until,
)
from pg_server import PgServer, pg_server, pg_url, running_server

from cqrs_cli.errors import UnavailableError
from cqrs_cli.paths import StorePaths
from cqrs_cli.sync.runner import Outage, Syncer, SyncReport

__all__ = [
    "pg_server",
    "pg_url",
]  # the session server's fixtures, for the tests that do not crash it

FAULT_TIMEOUT = 120.0
"""Generous: the writers, the follower and the server share two cores with other runs."""

CLI_WRITER = r"""
import json, subprocess, sys, time
exe, name, count, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
deadline = time.monotonic() + 90
with open(log, "a") as out:
    for i in range(count):
        item = f"{name}-{i}"
        for key, argv in (
            (f"{item}-c", ["item", "create", item, "-d", "made"]),
            (f"{item}-u", ["item", "update", item, f"done {i}"]),
        ):
            while True:
                done = subprocess.run(
                    [exe, *argv, "--idempotency-key", key, "--json"],
                    capture_output=True, text=True,
                )
                out.write(json.dumps({"item": item, "key": key, "rc": done.returncode,
                                      "out": done.stdout, "err": done.stderr,
                                      "type": "cli"}) + "\n")
                out.flush()
                if done.returncode != 6 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)  # the retry's pace: exit 6 says "retry"
            if done.returncode != 0:
                sys.exit(1)
"""

APPLY_WRITER = r"""
import json, subprocess, sys, time
exe, name, count, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
deadline = time.monotonic() + 90
with open(log, "a") as out:
    for i in range(0, count, 2):  # a batch of two items: create, then update, each
        items = [f"{name}-{j}" for j in range(i, min(i + 2, count))]
        lines = []
        for item in items:
            j = int(item.rpartition("-")[2])
            lines.append({"op": "create", "id": item, "description": "made", "key": f"{item}-c"})
            lines.append({"op": "update", "id": item, "description": f"done {j}",
                          "key": f"{item}-u"})
        stdin = "".join(json.dumps(line) + "\n" for line in lines)
        while True:
            done = subprocess.run([exe, "apply", "-", "--json"], input=stdin,
                                  capture_output=True, text=True)
            results = [json.loads(row) for row in done.stdout.splitlines()]
            for n, line in enumerate(lines):
                # Exit 0: the result of each line, the position of its event (an
                # already applied line's position is not checked).
                fresh = done.returncode == 0 and not results[n]["already_applied"]
                events = [{"position": results[n]["position"]}] if fresh else None
                out.write(json.dumps({"item": line["id"], "key": line["key"],
                                      "rc": done.returncode, "type": "cli",
                                      "out": json.dumps({"events": events}),
                                      "err": "" if done.returncode == 0 else done.stderr}) + "\n")
            out.flush()
            if done.returncode != 6 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if done.returncode != 0:
            sys.exit(1)
"""

SERVICE_WRITER = r"""
import json, sys, time
from cqrs_cli.errors import BusyError, CqrsError
from cqrs_cli.write.command_service import CommandService

name, count, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + 90
service = CommandService(catch_up=False)  # the journal is CQRS_JOURNAL's
with open(log, "a") as out:
    for i in range(count):
        item = f"{name}-{i}"
        for key, write in (
            (f"{item}-c", lambda: service.create_item(item, "made", idempotency_key=key)),
            (f"{item}-u", lambda: service.update_item(item, f"done {i}", idempotency_key=key)),
        ):
            while True:
                retry = False
                try:
                    result = write()
                    record = {"rc": 0, "out": json.dumps(result.to_json()), "err": ""}
                except CqrsError as error:
                    record = {"rc": int(error.exit_code), "out": "", "err": f"{error}\n",
                              "type": type(error).__name__}
                    retry = isinstance(error, BusyError)
                out.write(json.dumps({"item": item, "key": key, **record}) + "\n")
                out.flush()
                if not retry:
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if record["rc"]:
                sys.exit(1)
"""


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own: it is crashed."""
    with running_server() as server:
        yield server


def schema_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["schema"][0]


@dataclass
class Attempt:
    """One try of one command: `type` is "cli" for a `cqrs` process, else the name of
    the CqrsError CommandService raised."""

    item: str
    key: str
    rc: int
    out: str
    err: str
    type: str = "cli"


@dataclass
class Run:
    """Writers, a follower and the logs they keep, against one journal."""

    server: PgServer
    url: str
    home: Path
    logs: Path
    cqrs: str
    writers: list[subprocess.Popen[str]] = field(default_factory=list)
    follower: subprocess.Popen[str] | None = None
    follower_err: LineReader | None = None
    events: subprocess.Popen[str] | None = None
    events_out: Path | None = None

    @property
    def env(self) -> dict[str, str]:
        return child_env(self.home, CQRS_JOURNAL=self.url, CQRS_CATCHUP="0")

    def start_follower(self, *options: str) -> None:
        self.follower = subprocess.Popen(
            [self.cqrs, *options, "sync", "--follow", "--poll", "0.05"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self.follower.stderr is not None
        self.follower_err = LineReader(self.follower.stderr)
        if "-q" not in options:
            assert self.follower_err.next_line() == "Following the journal; Ctrl-C to stop."

    def start_events_follower(self) -> None:
        """`cqrs events --follow`, its stdout into a file."""
        self.events_out = self.logs.parent / "events.ndjson"
        with open(self.events_out, "w") as out:
            self.events = subprocess.Popen(
                [self.cqrs, "events", "--follow", "--poll", "0.05"],
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env,
            )

    def printed_positions(self) -> list[int]:
        assert self.events_out is not None
        lines = self.events_out.read_text().splitlines()
        complete = lines if self.events_out.read_text().endswith("\n") else lines[:-1]
        return [json.loads(line)["position"] for line in complete]

    def start_cli_writer(self, name: str, count: int) -> None:
        log = self.logs / f"{name}.log"
        self.writers.append(
            subprocess.Popen(
                [sys.executable, "-c", CLI_WRITER, self.cqrs, name, str(count), str(log)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env,
            )
        )

    def start_apply_writer(self, name: str, count: int) -> None:
        log = self.logs / f"{name}.log"
        self.writers.append(
            subprocess.Popen(
                [sys.executable, "-c", APPLY_WRITER, self.cqrs, name, str(count), str(log)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env,
            )
        )

    def start_service_writer(self, name: str, count: int) -> None:
        log = self.logs / f"{name}.log"
        self.writers.append(
            subprocess.Popen(
                [sys.executable, "-c", SERVICE_WRITER, name, str(count), str(log)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env,
            )
        )

    def attempts(self) -> list[Attempt]:
        found: list[Attempt] = []
        for log in sorted(self.logs.glob("*.log")):
            for line in log.read_text().splitlines():
                record = json.loads(line)
                found.append(Attempt(**record))
        return found

    def failures(self) -> int:
        return sum(attempt.rc != 0 for attempt in self.attempts())

    def event_count(self) -> int:
        table = f"{schema_of(self.url)}.events"
        if self.server.sql(f"SELECT to_regclass('{table}')") == [(None,)]:
            return 0  # no write has created the journal yet
        ((count,),) = self.server.sql(f"SELECT count(*) FROM {table}")
        assert isinstance(count, int)
        return count

    def outages_said(self, what: str = "journal unreachable") -> int:
        assert self.follower_err is not None
        return sum(what in line for line in self.follower_err.drain())

    def crash_and_restart(self, after_events: int, outage: int) -> None:
        """Once the journal holds `after_events`, crash the server; once a writer has
        failed for it and the follower has said so (its `outage`-th time), start it
        again, and wait for the follower to say it is back (else the next crash could
        come while it still waits to retry: one outage, as far as it can tell)."""
        assert wait_until(lambda: self.event_count() >= after_events, FAULT_TIMEOUT), (
            f"the writers did not reach {after_events} events"
        )
        failed = self.failures()
        self.server.stop("immediate")
        assert wait_until(lambda: self.failures() > failed, FAULT_TIMEOUT), (
            "no write failed while the server was down"
        )
        assert wait_until(lambda: self.outages_said() >= outage, FAULT_TIMEOUT), (
            f"the follower did not say the journal was unreachable: {self.follower_err_seen()}"
        )
        self.server.start()
        assert wait_until(
            lambda: self.outages_said("journal reachable again") >= outage, FAULT_TIMEOUT
        ), f"the follower did not say the journal was back: {self.follower_err_seen()}"

    def follower_err_seen(self) -> list[str]:
        return [] if self.follower_err is None else self.follower_err.drain()

    def finish_writers(self) -> None:
        for writer in self.writers:
            out, err = writer.communicate(timeout=FAULT_TIMEOUT * 2)
            assert writer.returncode == 0, f"{err[-1500:]}\n{out[-500:]}\n{self.attempts()[-3:]}"

    def projection(self) -> dict[str, str]:
        try:
            conn = read_only(self.home / "projection.db")
            try:
                rows = conn.execute("SELECT item_id, description FROM items WHERE NOT deleted")
                return {str(item): str(text) for item, text in rows}
            finally:
                conn.close()
        except sqlite3.Error:
            return {}

    def stop_follower(self) -> list[str]:
        """SIGTERM the follower; it exits 0. Its stderr since it started."""
        assert self.follower is not None and self.follower_err is not None
        assert self.follower.poll() is None, self.follower_err.drain()
        self.follower.send_signal(signal.SIGTERM)
        assert self.follower.wait(SUBPROCESS_TIMEOUT) == 0, self.follower_err.drain()
        self.follower_err.rest()
        return self.follower_err.seen

    def kill_all(self) -> None:
        for process in [*self.writers, self.follower, self.events]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def fault_run(own_server: PgServer, tmp_path: Path, cqrs_exe: str) -> Iterator[Run]:
    logs = tmp_path / "logs"
    logs.mkdir()
    run = Run(own_server, own_server.new_schema_url(), tmp_path / "home", logs, cqrs_exe)
    try:
        yield run
    finally:
        run.kill_all()


def check_outcome(run: Run, names: dict[str, int], crashes: int) -> None:
    """What guarantee 5 promises, once the writers are done (see the module's doc)."""
    attempts = run.attempts()
    failed = [attempt for attempt in attempts if attempt.rc != 0]
    assert failed, "no write ever failed: the crash did not reach the writers"
    for attempt in failed:
        assert attempt.rc == 6, attempt
        if attempt.type == "cli":
            one_error_line(attempt.err)
        else:
            assert attempt.type == "UnavailableError", attempt
            assert attempt.err.count("\n") == 1, attempt
        assert "retry" in attempt.err, attempt

    rows = run.server.sql(
        f"SELECT idempotency_key, position, stream_id FROM {schema_of(run.url)}.events "
        "ORDER BY position"
    )
    by_key: dict[str, list[int]] = {}
    for key, position, _ in rows:
        by_key.setdefault(str(key), []).append(int(position))  # type: ignore[call-overload]
    expected_keys = {
        f"{name}-{i}-{step}" for name, count in names.items() for i in range(count) for step in "cu"
    }
    acknowledged = [attempt for attempt in attempts if attempt.rc == 0]
    # Each writer retried until its command was acknowledged: every key once.
    assert {attempt.key for attempt in acknowledged} == expected_keys
    assert set(by_key) == expected_keys
    assert all(len(positions) == 1 for positions in by_key.values()), by_key
    for attempt in acknowledged:
        result = json.loads(attempt.out)
        if result["events"] is not None:  # None: an already applied line of a batch
            assert [event["position"] for event in result["events"]] == by_key[attempt.key], attempt

    # The follower catches up with all of it, and stays up throughout.
    wanted = {f"{name}-{i}": f"done {i}" for name, count in names.items() for i in range(count)}
    assert wait_until(lambda: run.projection() == wanted, FAULT_TIMEOUT), sorted(
        set(wanted.items()) ^ set(run.projection().items())
    )[:10]
    lines = run.stop_follower()
    assert not any("Traceback" in line for line in lines), lines
    unreachable = [line for line in lines if "journal unreachable" in line]
    back = [line for line in lines if "journal reachable again" in line]
    assert len(unreachable) == crashes, lines
    assert len(back) == crashes, lines
    for line in unreachable:
        assert line.startswith("cqrs: journal unreachable (postgresql://"), line
        assert line.endswith("; retrying"), line
    assert lines[-1] == "Stopped."
    # Nothing else: no warning the server sent as it went down, printed by libpq.
    assert len(lines) == 2 + 2 * crashes, lines
    status = run_cqrs(run.cqrs, "status", "--json", env=run.env, text=True)
    assert status.returncode == 0, status.stderr

    if run.events is not None:
        # `cqrs events --follow` printed every event once, in position order.
        positions = [int(row[1]) for row in rows]  # type: ignore[call-overload]
        assert wait_until(lambda: len(run.printed_positions()) >= len(positions), FAULT_TIMEOUT)
        assert run.printed_positions() == positions
        run.events.send_signal(signal.SIGTERM)
        _, err = run.events.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert run.events.returncode == 0, err
        said = err.splitlines()
        assert "Traceback" not in err, err
        assert [line for line in said if "journal unreachable" in line], err
        assert all(
            "journal unreachable" in line or "journal reachable again" in line for line in said
        ), err


def test_a_server_crash_loses_no_acknowledged_write_and_the_follower_rides_it_out(
    fault_run: Run,
) -> None:
    names = {"cli-a": 6, "cli-b": 6, "apply": 8, "service": 6}
    fault_run.start_follower()
    fault_run.start_events_follower()
    fault_run.start_cli_writer("cli-a", names["cli-a"])
    fault_run.start_cli_writer("cli-b", names["cli-b"])
    fault_run.start_apply_writer("apply", names["apply"])
    fault_run.start_service_writer("service", names["service"])
    fault_run.crash_and_restart(after_events=6, outage=1)
    fault_run.finish_writers()
    check_outcome(fault_run, names, crashes=1)


@pytest.mark.slow
def test_repeated_server_crashes_lose_no_acknowledged_write(fault_run: Run) -> None:
    names = {f"cli-{n}": 20 for n in range(4)} | {"apply": 40, "service-0": 30, "service-1": 30}
    fault_run.start_follower()
    fault_run.start_events_follower()
    for name, count in names.items():
        if name.startswith("cli"):
            fault_run.start_cli_writer(name, count)
        elif name.startswith("apply"):
            fault_run.start_apply_writer(name, count)
        else:
            fault_run.start_service_writer(name, count)
    for outage, after in enumerate((20, 80, 160), start=1):
        fault_run.crash_and_restart(after_events=after, outage=outage)
    fault_run.finish_writers()
    check_outcome(fault_run, names, crashes=3)


def test_a_quiet_follower_started_while_the_server_is_down_waits_for_it(fault_run: Run) -> None:
    """-q (as docs/cqrs-sync.service runs it) silences the notes, not the outage: a
    follower that stops applying says why in its service's log."""
    create = run_cqrs(fault_run.cqrs, "item", "create", "Early", env=fault_run.env, text=True)
    assert create.returncode == 0, create.stderr
    fault_run.server.stop("immediate")
    fault_run.start_follower("-q")
    assert wait_until(lambda: fault_run.outages_said() == 1, FAULT_TIMEOUT)
    assert fault_run.follower is not None and fault_run.follower.poll() is None
    fault_run.server.start()
    assert wait_until(lambda: fault_run.projection() == {"Early": ""}, FAULT_TIMEOUT)
    lines = fault_run.stop_follower()
    assert len(lines) == 2, lines
    assert lines[0].startswith("cqrs: journal unreachable (postgresql://"), lines
    assert lines[1].startswith("cqrs: journal reachable again after "), lines


@pytest.mark.parametrize(
    "argv", [("sync", "--follow"), ("events", "--follow")], ids=["sync", "events"]
)
def test_a_follower_waiting_for_its_server_stops_on_sigterm(
    store: Path, cqrs_exe: str, argv: tuple[str, ...]
) -> None:
    """No server at all: nothing listens on the port."""
    import socket

    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        env = child_env(
            store, CQRS_CATCHUP="0", CQRS_JOURNAL=f"postgresql://u@127.0.0.1:{port}/db?schema=s"
        )
        follower = subprocess.Popen(
            [cqrs_exe, *argv, "--poll", "0.05"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert follower.stderr is not None
            err = LineReader(follower.stderr)
            line = err.next_line()
            if line.startswith("Following"):
                line = err.next_line()
            assert line.startswith("cqrs: journal unreachable (postgresql://u@127.0.0.1:"), line
            assert "Connection refused" in line and line.endswith("; retrying"), line
            follower.send_signal(signal.SIGTERM)
            assert follower.wait(SUBPROCESS_TIMEOUT) == 0
            rest = err.rest()
            assert not any("Traceback" in seen for seen in rest), rest
            assert rest == (["Stopped."] if argv[0] == "sync" else []), rest
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()


def test_a_reader_host_answers_from_its_projection_while_the_server_is_down(
    fault_run: Run,
) -> None:
    def cqrs(*argv: str) -> subprocess.CompletedProcess[str]:
        return run_cqrs(fault_run.cqrs, *argv, env=fault_run.env, text=True)

    made = cqrs("item", "create", "A", "-d", "kept", "--sync")
    assert made.returncode == 0, made.stderr
    fault_run.server.stop("immediate")
    reads: list[tuple[tuple[str, ...], str]] = [
        (("item", "get", "A"), "A: kept\n"),
        (("item", "list"), "A\n"),
        (("item", "get", "A", "--min-position", "1"), "A: kept\n"),
    ]
    for argv, out in reads:
        done = cqrs(*argv)
        assert (done.returncode, done.stdout) == (0, out), (argv, done.stderr)
        note = one_error_line(done.stderr, "cqrs: note: the journal is unreachable (postgresql://")
        assert note.rstrip().endswith("cannot tell whether the projection is current"), note
        quiet = cqrs("-q", *argv)
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, out, ""), argv
    # What needs the server says so: exit 6, retry.
    for argv in (("status",), ("item", "create", "B"), ("sync",)):
        done = cqrs(*argv)
        assert done.returncode == 6, (argv, done.stderr)
        assert "retry" in one_error_line(done.stderr)
    fault_run.server.start()
    assert cqrs("item", "get", "A").stderr == ""


# --- The reconnection is the follow loop's, whatever the backend ------------------------------


class FlakyFinder:
    """find_journal, failing with UnavailableError `failures` times first."""

    def __init__(self, failures: int) -> None:
        from cqrs_cli.journal import locator

        self.failures = failures
        self.calls: list[str] = []
        self._real = locator.find_journal

    def __call__(self, where: str) -> object:
        self.calls.append(where)
        if len(self.calls) <= self.failures:
            raise UnavailableError("db.example:5432: connection refused (retry)")
        return self._real(where)


def test_the_follow_loop_reopens_an_unreachable_journal_from_its_original_locator(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cqrs_cli.journal import locator
    from cqrs_cli.write.command_service import CommandService

    CommandService(store, catch_up=False).create_item("One")
    finder = FlakyFinder(failures=3)
    monkeypatch.setattr(locator, "find_journal", finder)
    monkeypatch.setattr(Outage, "FIRST", 0.01)
    said: list[str] = []
    reports: list[SyncReport] = []
    paths = StorePaths.resolve(home=str(store))
    with Syncer(paths) as syncer:
        syncer.follow(
            reports.append,
            poll_interval=0.01,
            should_stop=lambda: bool(reports),
            on_outage=said.append,
        )
    assert finder.calls == [paths.journal] * 4
    assert [report.end for report in reports] == [1]
    assert len(said) == 2, said
    assert said[0] == "journal unreachable (db.example:5432: connection refused (retry)); retrying"
    assert said[1].startswith("journal reachable again after ")


def test_the_backoff_doubles_up_to_its_ceiling_and_starts_again_once_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    # The runner's `time` is the time module: only this test's thread runs it meanwhile.
    monkeypatch.setattr("cqrs_cli.sync.runner.time.sleep", sleep)
    monkeypatch.setattr("cqrs_cli.sync.runner.time.monotonic", lambda: clock[0])
    said: list[str] = []
    outage = Outage(said.append, poll_interval=1.0)
    waited: list[float] = []
    for _ in range(9):
        before = clock[0]
        outage.wait(UnavailableError("down"), lambda: False)
        waited.append(round(clock[0] - before, 6))
    assert waited == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert max(slept) <= 1.0  # in slices of the poll interval, asking should_stop between
    assert said == ["journal unreachable (down); retrying"]
    outage.over()
    assert said[1:] == ["journal reachable again after 21.3 s; following"]
    outage.over()  # nothing to say when nothing was lost
    assert len(said) == 2
    outage.wait(UnavailableError("down again"), lambda: True)  # a stop cuts the wait short
    assert said[2:] == ["journal unreachable (down again); retrying"]
    assert round(clock[0], 6) == 21.3


def test_a_given_journal_that_becomes_unreachable_is_the_callers_to_handle(store: Path) -> None:
    from cqrs_cli.journal.memory_journal import MemoryJournal

    class Unreachable(MemoryJournal):
        def wait_for_change(self, after: int, timeout: float) -> bool:
            raise UnavailableError("gone")

    paths = StorePaths.resolve(home=str(store))
    with Syncer(paths, journal=Unreachable()) as syncer, pytest.raises(UnavailableError):
        syncer.follow(lambda report: None, poll_interval=0.01)


def test_a_follower_of_an_sqlite_journal_is_unaffected(store: Path, cqrs_exe: str) -> None:
    env = child_env(store, CQRS_CATCHUP="0")
    assert run_cqrs(cqrs_exe, "item", "create", "A", env=env).returncode == 0
    follower = subprocess.Popen(
        [cqrs_exe, "sync", "--follow", "--poll", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert follower.stdout is not None and follower.stderr is not None
        out, err = LineReader(follower.stdout), LineReader(follower.stderr)
        assert out.next_line() == "Synced 1 event (position 0 -> 1)"
        assert run_cqrs(cqrs_exe, "item", "create", "B", env=env).returncode == 0
        assert out.next_line() == "Synced 1 event (position 1 -> 2)"
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(SUBPROCESS_TIMEOUT) == 0
        err.rest()
        assert err.seen == ["Following the journal; Ctrl-C to stop.", "Stopped."]
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


# --- A first write racing another's creation of the journal ---------------------------------


class _CursorCommittingFirst:
    """A cursor that commits `creator`'s transaction just before the statement that
    names `trigger`: another writer's creation of the journal, committing between two
    statements of this one."""

    def __init__(self, cursor: Any, creator: Any, trigger: str) -> None:
        self._cursor = cursor
        self._creator = creator
        self._trigger = trigger

    def __enter__(self) -> _CursorCommittingFirst:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()

    def execute(self, sql: str, params: object = None) -> None:
        if self._trigger in sql and self._creator.status != psycopg2_extensions().STATUS_READY:
            self._creator.commit()
        self._cursor.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _ConnectionCommittingFirst:
    def __init__(self, conn: Any, creator: Any, trigger: str) -> None:
        self._conn = conn
        self._creator = creator
        self._trigger = trigger

    def cursor(self) -> _CursorCommittingFirst:
        return _CursorCommittingFirst(self._conn.cursor(), self._creator, self._trigger)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def psycopg2_extensions() -> Any:
    import psycopg2.extensions

    return psycopg2.extensions


def test_a_journal_created_between_two_looks_of_a_first_write_is_taken_for_one(
    pg_url: str,
) -> None:
    """Seen with seven writers starting at once on a new schema: one of them exited 7,
    "holds an events table that is not a cqrs journal's": journal_meta was not there yet
    when it looked, the events table was when it looked again."""
    from cqrs_cli.journal.postgres_connect import connect, parse
    from cqrs_cli.journal.postgres_journal import PostgresBackend
    from cqrs_cli.journal.postgres_sql import CREATE_SCHEMA, DDL

    where = parse(pg_url)
    creator = connect(where)
    creator.autocommit = False
    with creator.cursor() as cur:
        cur.execute(CREATE_SCHEMA)
        cur.execute(DDL)
        cur.execute(
            "INSERT INTO journal_meta (key, value) VALUES ('format', 'cqrs journal'), "
            "('schema_version', '1'), ('journal_id', 'made-by-the-other-writer')"
        )
    looker = connect(where)
    try:
        racing = _ConnectionCommittingFirst(looker, creator, "to_regclass")
        found = PostgresBackend()._state(where, racing)  # type: ignore[arg-type]
        assert found == "made-by-the-other-writer"
    finally:
        looker.close()
        creator.close()
