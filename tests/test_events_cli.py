"""`cqrs events`: the journal's events as NDJSON envelopes, filtered, and followed live
from another process."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from common import (
    SUBPROCESS_TIMEOUT,
    InProcessCli,
    LineReader,
    default_sigint,
    event_rows,
    ndjson,
    one_error_line,
    run_cqrs,
)
from scripting_helpers import json_lines, wait_until_sleeping

from cqrs_cli.journal.chain import GENESIS
from cqrs_cli.write.command_service import CommandService


@pytest.fixture
def journal(store: Path) -> Path:
    return store / "journal.db"


HOSTILE = 'line one\nline two \x1b[2J \u2028 \u202e [/] "quoted" \\ \U0001f600'


@pytest.fixture
def seeded(journal: Path) -> Path:
    """Five events: 1 A created, 2 B created, 3 A updated, 4 B deleted, 5 C created."""
    service = CommandService()
    service.create_item("A", "first", idempotency_key="k1", correlation_id="c1")
    service.create_item("B")
    service.update_item("A", HOSTILE)
    service.delete_item("B", correlation_id="c4")
    service.create_item("C", "third")
    return journal


ENVELOPE_KEYS = [
    "position",
    "event_id",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "data",
    "recorded_at",
    "metadata",
    "prev_hash",
    "hash",
]


def envelope_of(row: tuple[object, ...]) -> dict[str, object]:
    """What `cqrs events` must print for a row of the events table, built from the
    documented columns (not from the code that prints it)."""
    (position, event_id, stream_id, version, event_type, schema, data, recorded_at) = row[:8]
    command_id, key, correlation_id, prev_hash, digest = row[8:]
    return {
        "position": position,
        "event_id": event_id,
        "stream_id": stream_id,
        "stream_version": version,
        "event_type": event_type,
        "schema_version": schema,
        "data": json.loads(str(data)),
        "recorded_at": recorded_at,
        "metadata": {
            "command_id": command_id,
            "idempotency_key": key,
            "correlation_id": correlation_id,
        },
        "prev_hash": prev_hash,
        "hash": digest,
    }


def positions(out: str) -> list[int]:
    return [int(str(e["position"])) for e in json_lines(out)]


def test_events_are_ndjson_envelopes_with_exactly_the_documented_keys(
    cli: InProcessCli, seeded: Path
) -> None:
    code, out, err = cli("events")
    assert (code, err) == (0, "")
    events = json_lines(out)
    assert len(out.splitlines()) == 5  # the multi-line description stays on its line
    metadata: list[dict[str, object]] = []
    for event in events:
        assert list(event) == ENVELOPE_KEYS
        assert isinstance(event["metadata"], dict)
        metadata.append(event["metadata"])
        assert list(metadata[-1]) == ["command_id", "idempotency_key", "correlation_id"]
    assert events == [envelope_of(row) for row in event_rows(seeded)]
    assert [(e["stream_id"], e["stream_version"], e["event_type"]) for e in events] == [
        ("A", 1, "ItemCreated"),
        ("B", 1, "ItemCreated"),
        ("A", 2, "ItemUpdated"),
        ("B", 2, "ItemDeleted"),
        ("C", 1, "ItemCreated"),
    ]
    assert events[0]["data"] == {"description": "first"}
    assert events[2]["data"] == {"description": HOSTILE}
    assert events[3]["data"] == {}
    assert [(m["idempotency_key"], m["correlation_id"]) for m in metadata] == [
        ("k1", "c1"),
        (None, None),
        (None, None),
        (None, "c4"),
        (None, None),
    ]
    assert events[0]["prev_hash"] == GENESIS
    assert [e["prev_hash"] for e in events[1:]] == [e["hash"] for e in events[:-1]]


def test_terminal_control_characters_never_reach_stdout_raw(
    cli: InProcessCli, seeded: Path
) -> None:
    _, out, _ = cli("events", "--stream", "A")
    for raw in ("\x1b", "\u2028", "\u202e", "\r"):
        assert raw not in out
    assert json_lines(out)[1]["data"] == {"description": HOSTILE}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], [1, 2, 3, 4, 5]),
        (["--stream", "A"], [1, 3]),
        (["--stream", "B"], [2, 4]),
        (["--stream", "Nobody"], []),
        (["--after", "2"], [3, 4, 5]),
        (["--after", "5"], []),
        (["--after", "0"], [1, 2, 3, 4, 5]),
        (["--limit", "2"], [1, 2]),
        (["--limit", "0"], []),
        (["--limit", "99"], [1, 2, 3, 4, 5]),
        (["--type", "ItemCreated"], [1, 2, 5]),
        (["--type", "ItemUpdated"], [3]),
        (["--type", "ItemDeleted"], [4]),
        (["--stream", "A", "--after", "1"], [3]),
        (["--stream", "B", "--type", "ItemDeleted"], [4]),
        (["--stream", "A", "--type", "ItemDeleted"], []),
        (["--type", "ItemCreated", "--after", "1", "--limit", "1"], [2]),
        (["--type", "ItemCreated", "--limit", "2"], [1, 2]),
        (["--stream", "A", "--limit", "1"], [1]),
        (["--after", "1", "--limit", "2"], [2, 3]),
        (["--stream", "C", "--type", "ItemCreated", "--after", "4", "--limit", "5"], [5]),
    ],
)
def test_filters_and_their_combinations(
    cli: InProcessCli, seeded: Path, options: list[str], expected: list[int]
) -> None:
    code, out, err = cli("events", *options)
    assert (code, err) == (0, "")
    assert positions(out) == expected
    every = {e["position"]: e for e in json_lines(cli("events").out)}
    assert json_lines(out) == [every[p] for p in expected]


def test_many_events_come_out_complete_and_in_order(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    # More than one batch of reads: creates, updates and deletes of 500 items.
    commands = [{"op": "create", "id": f"item-{n:03d}"} for n in range(500)]
    for round_ in range(7):
        commands += [
            {"op": "update", "id": f"item-{n:03d}", "description": f"round {round_}"}
            for n in range(500)
        ]
    commands += [{"op": "delete", "id": f"item-{n:03d}"} for n in range(0, 500, 5)]
    commands += [{"op": "create", "id": f"item-{n:03d}"} for n in range(0, 500, 10)]
    batch = tmp_path / "commands.ndjson"
    batch.write_bytes(ndjson(*commands))
    assert cli("apply", str(batch)).code == 0
    code, out, _ = cli("events")
    assert code == 0
    assert positions(out) == list(range(1, len(commands) + 1))
    assert positions(cli("events", "--after", "1999", "--limit", "2100").out) == list(
        range(2000, 4100)
    )
    created = [row[0] for row in event_rows(journal) if row[4] == "ItemCreated"]
    assert positions(cli("events", "--type", "ItemCreated").out) == created


def test_no_journal_means_no_events(cli: InProcessCli, journal: Path) -> None:
    assert cli("events") == (0, "", "")
    assert cli("events", "--stream", "A", "--type", "ItemCreated") == (0, "", "")
    assert not journal.exists()


@pytest.mark.parametrize(
    "options",
    [["--limit", "-1"], ["--after", "-1"], ["--poll", "0"], ["--limit", "x"]],
    ids=["limit", "after", "poll", "not-a-number"],
)
def test_invalid_options_are_exit_2(cli: InProcessCli, seeded: Path, options: list[str]) -> None:
    code, out, err = cli("events", *options)
    assert (code, out) == (2, "")
    one_error_line(err, "cqrs events: error: ")


def test_stream_ids_are_normalised_as_for_item_commands(cli: InProcessCli, journal: Path) -> None:
    CommandService().create_item("Caf\u00e9", "x")
    assert positions(cli("events", "--stream", "Cafe\u0301").out) == [1]


# --- --follow, in a process of its own -----------------------------------------------------


class Follower:
    """`cqrs events --follow ...` running in its own process, its stdout read by a thread."""

    def __init__(self, exe: str, *options: str) -> None:
        self.process = subprocess.Popen(
            [exe, "events", "--follow", "--poll", "0.05", *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        assert self.process.stdout is not None
        self.reader = LineReader(self.process.stdout)

    def next_event(self) -> dict[str, object]:
        event = json.loads(self.reader.next_line(timeout=SUBPROCESS_TIMEOUT))
        assert isinstance(event, dict)
        return event

    def interrupt(self) -> tuple[int, list[str], str]:
        """Ctrl-C: (exit code, lines not read yet, stderr)."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=SUBPROCESS_TIMEOUT)
        return self.process.returncode, self.reader.rest(), err

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=SUBPROCESS_TIMEOUT)


Follow = Callable[..., Follower]


@pytest.fixture
def follow(cqrs_exe: str) -> Iterator[Follow]:
    """Start followers with these options; each is stopped at the end of the test."""
    started: list[Follower] = []

    def start(*options: str) -> Follower:
        follower = Follower(cqrs_exe, *options)
        started.append(follower)
        return follower

    yield start
    for follower in started:
        follower.stop()


def write(exe: str, *argv: str) -> None:
    """A write by another process."""
    result = run_cqrs(exe, "-q", "item", *argv)
    assert result.returncode == 0, result.stderr


def test_follow_prints_events_appended_later_by_other_processes(
    cqrs_exe: str, seeded: Path, follow: Follow
) -> None:
    follower = follow()
    assert [follower.next_event()["position"] for _ in range(5)] == [1, 2, 3, 4, 5]
    write(cqrs_exe, "create", "D", "-d", "later")
    event = follower.next_event()
    assert (event["position"], event["stream_id"], event["data"]) == (
        6,
        "D",
        {"description": "later"},
    )
    assert list(event) == ENVELOPE_KEYS
    write(cqrs_exe, "update", "D", "later still")
    write(cqrs_exe, "delete", "D")
    assert [follower.next_event()["event_type"] for _ in range(2)] == ["ItemUpdated", "ItemDeleted"]
    code, rest, err = follower.interrupt()
    assert (code, rest, err) == (0, [], "")


def test_follow_with_a_type_filter_skips_other_appends_and_keeps_going(
    cqrs_exe: str, seeded: Path, follow: Follow
) -> None:
    follower = follow("--type", "ItemDeleted", "--after", "2")
    assert follower.next_event()["position"] == 4
    for n in range(3):
        write(cqrs_exe, "create", f"skipped-{n}")  # none of these is printed
    write(cqrs_exe, "delete", "skipped-1")
    event = follower.next_event()
    assert (event["position"], event["stream_id"], event["event_type"]) == (
        9,
        "skipped-1",
        "ItemDeleted",
    )
    wait_until_sleeping(follower.process.pid)  # idle between polls, not spinning
    write(cqrs_exe, "update", "A", "not printed")
    write(cqrs_exe, "delete", "A")
    event = follower.next_event()
    assert (event["position"], event["stream_id"]) == (11, "A")
    code, rest, err = follower.interrupt()
    assert (code, rest, err) == (0, [], "")


def test_follow_with_a_stream_filter(cqrs_exe: str, seeded: Path, follow: Follow) -> None:
    follower = follow("--stream", "C")
    assert follower.next_event()["position"] == 5
    write(cqrs_exe, "create", "Other")
    write(cqrs_exe, "update", "C", "changed")
    event = follower.next_event()
    assert (event["position"], event["data"]) == (7, {"description": "changed"})
    code, rest, _ = follower.interrupt()
    assert (code, rest) == (0, [])


def test_follow_waits_for_a_journal_that_does_not_exist_yet(
    cqrs_exe: str, journal: Path, follow: Follow
) -> None:
    follower = follow()
    wait_until_sleeping(follower.process.pid)
    assert not journal.exists()  # following creates nothing
    write(cqrs_exe, "create", "First")
    event = follower.next_event()
    assert (event["position"], event["stream_id"]) == (1, "First")
    code, rest, err = follower.interrupt()
    assert (code, rest, err) == (0, [], "")


def test_follow_with_a_limit_stops_by_itself(cqrs_exe: str, seeded: Path) -> None:
    result = run_cqrs(cqrs_exe, "events", "--follow", "--limit", "3")
    assert result.returncode == 0
    assert positions(result.stdout.decode()) == [1, 2, 3]


def test_follow_interrupted_before_any_journal_exits_0(
    cqrs_exe: str, journal: Path, follow: Follow
) -> None:
    follower = follow()
    wait_until_sleeping(follower.process.pid)
    code, rest, err = follower.interrupt()
    assert (code, rest, err) == (0, [], "")
