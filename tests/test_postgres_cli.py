"""The journal on PostgreSQL, as users meet it: every command through the installed
`cqrs`, the move to and from the server, and the guarantees of "Beyond one machine"
(README) against a real server the tests start themselves (tests/pg_server.py).

- No reader skips or repeats an event when transactions commit out of position order.
- Writers in many processes: per-item concurrency, idempotency, retries; every event once.
- `journal verify` catches an edited event, an edited hash and a removed event.
- export | import moves a journal both ways, byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from common import child_env, installed_cqrs, run_cqrs, wait_until
from pg_server import PgServer, pg_server, pg_url

from cqrs_cli.ids import new_uuid
from cqrs_cli.journal.locator import find_journal, open_journal
from cqrs_cli.journal.postgres_journal import PostgresBatch, PostgresJournal
from cqrs_cli.journal.records import AppendMetadata, NewEvent

__all__ = ["pg_server", "pg_url"]


@pytest.fixture
def env(tmp_path: Path, pg_url: str) -> dict[str, str]:
    """A child's environment: a fresh home for the projection, the journal on the server."""
    return child_env(tmp_path / "home", CQRS_JOURNAL=pg_url, CQRS_CATCHUP="0")


def cqrs(env: dict[str, str], *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_cqrs(installed_cqrs(), *argv, stdin=stdin.encode(), env=env, text=True)


def ok(env: dict[str, str], *argv: str, stdin: str = "") -> str:
    done = cqrs(env, *argv, stdin=stdin)
    assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done.stdout


def item_ids(env: dict[str, str]) -> list[str]:
    return [record["item_id"] for record in json.loads(ok(env, "item", "list", "--json"))]


# --- Every command ---------------------------------------------------------------------


def test_every_command_works_against_the_server(env: dict[str, str]) -> None:
    assert "Item created: Item1" in ok(env, "item", "create", "Item1", "-d", "first")
    ok(env, "item", "update", "Item1", "Updated Description")
    ok(env, "item", "create", "Item2", "--idempotency-key", "k-2")
    assert "already applied" in ok(env, "item", "create", "Item2", "--idempotency-key", "k-2")
    ok(env, "item", "delete", "Item2")
    assert cqrs(env, "item", "delete", "Item2").returncode == 3
    assert cqrs(env, "item", "update", "Item1", "x", "--expect-version", "1").returncode == 4

    batch = "".join(
        json.dumps({"op": "create", "id": f"B{n}", "description": f"batch {n}"}) + "\n"
        for n in range(5)
    )
    ok(env, "apply", "-", stdin=batch)
    each = '{"op": "create", "id": "B9"}\n{"op": "create", "id": "B0"}\n'
    assert cqrs(env, "apply", "--each", "-", stdin=each).returncode == 4  # B0 exists

    assert "Synced 10 events" in ok(env, "sync")
    assert ok(env, "item", "get", "Item1") == "Item1: Updated Description\n"
    assert item_ids(env) == ["B0", "B1", "B2", "B3", "B4", "B9", "Item1"]
    history = json.loads(ok(env, "item", "history", "Item1", "--json"))
    assert [h["version"] for h in history] == [1, 2]
    assert "B3" in ok(env, "item", "search", "batch")
    assert ok(env, "item", "get", "Item1", "--at", "1") == "Item1: first\n"

    events = [json.loads(line) for line in ok(env, "events").splitlines()]
    assert [e["position"] for e in events] == list(range(1, 11))
    assert ok(env, "events", "--stream", "Item2", "--type", "ItemDeleted").count("\n") == 1

    status = json.loads(ok(env, "status", "--json"))
    assert status["journal_head"] == 10
    assert {view["checkpoint"] for view in status["views"]} == {10}
    assert "Verified 10 events" in ok(env, "journal", "verify")

    ok(env, "item", "create", "Late")
    assert "Synced 1 event " in ok(env, "sync")
    assert "Rebuilt from 11 events" in ok(env, "sync", "--rebuild")
    assert item_ids(env)[-1] == "Late"


def test_backup_says_in_one_line_what_to_use_instead(env: dict[str, str], tmp_path: Path) -> None:
    ok(env, "item", "create", "Item1")
    done = cqrs(env, "journal", "backup", str(tmp_path / "copy.db"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cqrs journal export" in done.stderr
    assert not (tmp_path / "copy.db").exists()


def test_the_python_services_resolve_the_server_journal_as_the_cli_does(
    env: dict[str, str], tmp_path: Path
) -> None:
    script = (
        "from cqrs_cli import CommandService, QueryService\n"
        "CommandService().create_item('Item1')\n"
        "CommandService().update_item('Item1', 'Updated Description')\n"
        "query = QueryService()\n"
        "query.sync()\n"
        "print(query.get_item('Item1'))\n"
    )
    done = subprocess.run(
        [_python(), "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("Item1: Updated Description")
    assert ok(env, "events").count("\n") == 2


def _python() -> str:
    import sys

    return sys.executable


# --- Moving a journal ------------------------------------------------------------------


def test_export_import_moves_a_journal_both_ways_byte_for_byte(
    tmp_path: Path, pg_server: PgServer
) -> None:
    file_env = child_env(tmp_path / "home", CQRS_JOURNAL=str(tmp_path / "j.db"), CQRS_CATCHUP="0")
    ok(file_env, "item", "create", "Item1", "-d", "été ✓")
    ok(file_env, "item", "update", "Item1", "two\nlines")
    ok(file_env, "item", "create", "Item2", "--idempotency-key", "k")
    ok(file_env, "sync")
    exported = ok(file_env, "journal", "export")

    server = pg_server.new_schema_url()
    server_env = {**file_env, "CQRS_JOURNAL": server}
    ok(server_env, "journal", "import", "-", stdin=exported)
    assert ok(server_env, "journal", "export") == exported
    assert cqrs(server_env, "journal", "verify").returncode == 0
    # The projection built before the move stays valid: the journal id came along.
    assert "Synced 0 events" in ok(server_env, "sync")
    ok(server_env, "item", "update", "Item2", "written on the server")
    assert "Synced 1 event " in ok(server_env, "sync")

    # And back: a server journal (stream links) into a new file, still verifying.
    back_env = {**file_env, "CQRS_JOURNAL": str(tmp_path / "back.db")}
    moved = ok(server_env, "journal", "export")
    ok(back_env, "journal", "import", "-", stdin=moved)
    assert ok(back_env, "journal", "export") == moved
    assert cqrs(back_env, "journal", "verify").returncode == 0
    ok(back_env, "item", "create", "Item3")
    assert cqrs(back_env, "journal", "verify").returncode == 0

    # A second import to the same schema is refused and changes nothing.
    again = cqrs(server_env, "journal", "import", "-", stdin=exported)
    assert again.returncode == 2
    assert ok(server_env, "journal", "export") == moved


# --- Guarantee 1: no reader skips or repeats an event ------------------------------------


def _metadata() -> AppendMetadata:
    return AppendMetadata("2026-01-01T00:00:00.000000Z", new_uuid())


def _created(description: str) -> list[NewEvent]:
    return [NewEvent(new_uuid(), "ItemCreated", 1, json.dumps({"description": description}))]


def test_a_commit_out_of_position_order_is_neither_skipped_nor_repeated(
    env: dict[str, str], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writer A (a batch) takes a position and waits before committing (its rows are
    in, its reservation released); writer B (a single command, which does not wait for
    writers in flight as a batch does) takes the next position and commits; a sync runs
    in between, and again after A commits: the projection has both, once each."""
    ok(env, "item", "create", "Seed")
    writer_a = open_journal(pg_url)
    writer_b = open_journal(pg_url)
    positioned = threading.Event()
    go = threading.Event()
    a_events: list[int] = []
    flush = PostgresBatch._flush

    def flush_then_wait(batch: PostgresBatch, release: bool = False) -> None:
        flush(batch, release)
        if release and batch._journal is writer_a:
            positioned.set()  # between the reservation's end and COMMIT
            assert go.wait(30)

    monkeypatch.setattr(PostgresBatch, "_flush", flush_then_wait)

    def slow_writer() -> None:
        with writer_a.batch() as batch:
            batch.stream_version("A")
            a_events.extend(e.position for e in batch.append("A", 0, _created("a"), _metadata()))

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert positioned.wait(30)
        with writer_b.batch(single=True) as batch:
            batch.stream_version("B")
            b_events = batch.append("B", 0, _created("b"), _metadata())
        assert b_events[0].position > a_events[0]  # positions given at its commit
        # B is committed, A is not: the reader stops before A's position.
        assert "Synced 1 event (position 0 -> 1)" in ok(env, "sync")
        assert item_ids(env) == ["Seed"]
        assert find_journal(pg_url).head() == 1  # type: ignore[union-attr]
    finally:
        go.set()
        thread.join()
    assert "Synced 2 events (position 1 -> 3)" in ok(env, "sync")
    assert item_ids(env) == ["A", "B", "Seed"]
    history = [json.loads(line) for line in ok(env, "events").splitlines()]
    assert [e["position"] for e in history] == [1, 2, 3]
    writer_a.close()
    writer_b.close()


def test_a_rolled_back_transaction_leaves_a_gap_that_readers_step_over(
    env: dict[str, str], pg_url: str
) -> None:
    ok(env, "item", "create", "Before")
    journal = open_journal(pg_url)
    with pytest.raises(RuntimeError), journal.batch() as batch:
        batch.stream_version("Lost")
        batch.append("Lost", 0, _created("never"), _metadata())
        batch.read_streams(["Lost"])  # its row is inserted, then rolled back
        raise RuntimeError("abandon")
    journal.close()
    ok(env, "item", "create", "After")
    ok(env, "sync")
    assert item_ids(env) == ["After", "Before"]
    assert cqrs(env, "journal", "verify").returncode == 0


# --- Guarantee 2: writers in many processes ----------------------------------------------

WRITER = """
import sys
from cqrs_cli import CommandService
service = CommandService()
number, count = int(sys.argv[1]), int(sys.argv[2])
for n in range(count):
    key = f"w{number}-{n}"
    if n < 3:
        service.create_item(f"W{number}-{n}", idempotency_key=key)
    else:  # racing the other writers on three shared items
        service.update_item(f"Item{n % 3}", key, idempotency_key=key)
print("done")
"""


def test_writers_in_many_processes_lose_nothing_and_a_follower_sees_every_event_once(
    env: dict[str, str], pg_url: str
) -> None:
    for n in range(3):
        ok(env, "item", "create", f"Item{n}")
    follower = subprocess.Popen(
        [installed_cqrs(), "sync", "--follow", "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writers, count = 6, 25
    children = [
        subprocess.Popen(
            [_python(), "-c", WRITER, str(w), str(count)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    # Every update of the shared items landed once: versions 1..n with no gap.
    journal = find_journal(pg_url)
    assert isinstance(journal, PostgresJournal)
    events = journal.read_all(limit=100_000)
    expected = 3 + writers * 3 + writers * (count - 3)
    assert len(events) == expected
    assert len({e.event_id for e in events}) == expected
    for n in range(3):
        versions = [e.stream_version for e in journal.read_stream(f"Item{n}")]
        assert versions == list(range(1, len(versions) + 1))
    # A retry of every command appends nothing.
    again = subprocess.run(
        [_python(), "-c", WRITER, "0", str(count)], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert journal.count_after(0) == expected
    head = journal.head()
    journal.close()

    def caught_up() -> bool:
        status = json.loads(ok(env, "status", "--json"))
        return {view["checkpoint"] for view in status["views"]} == {head}

    assert wait_until(caught_up, timeout=60)
    follower.terminate()
    follower.communicate(timeout=30)
    history = [json.loads(line) for line in ok(env, "events").splitlines()]
    assert [e["position"] for e in history] == sorted({e["position"] for e in history})


# --- Guarantee 4: tamper evidence ---------------------------------------------------------


def _tamper(server: PgServer, url: str, statement: str) -> None:
    schema = url.rpartition("schema=")[2]
    table = f'"{schema}".events'
    server.sql(
        f"ALTER TABLE {table} DISABLE TRIGGER events_append_only; "
        + statement.format(events=table)
        + f"; ALTER TABLE {table} ENABLE TRIGGER events_append_only"
    )


@pytest.mark.parametrize(
    ("change", "position", "problem"),
    [
        (
            'UPDATE {events} SET data = \'{{"description":"forged"}}\' WHERE position = 3',
            3,
            "edited",
        ),
        ("UPDATE {events} SET hash = repeat('a', 64) WHERE position = 2", 2, "edited"),
        ("DELETE FROM {events} WHERE position = 2", 4, "chain"),
    ],
    ids=["edited-event", "edited-hash", "removed-event"],
)
def test_verify_names_the_first_bad_position(
    env: dict[str, str], pg_url: str, pg_server: PgServer, change: str, position: int, problem: str
) -> None:
    ok(env, "item", "create", "Item1")
    ok(env, "item", "update", "Item1", "two")
    ok(env, "item", "create", "Item2")
    ok(env, "item", "update", "Item1", "three")
    assert cqrs(env, "journal", "verify").returncode == 0
    _tamper(pg_server, pg_url, change)
    done = cqrs(env, "journal", "verify", "--json")
    assert done.returncode == 7, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert report["position"] == position
    assert problem in report["problem"]


def test_the_append_only_triggers_refuse_changes(
    pg_server: PgServer, pg_url: str, env: dict[str, str]
) -> None:
    import psycopg2

    ok(env, "item", "create", "Item1")
    schema = pg_url.rpartition("schema=")[2]
    for statement in (
        f"UPDATE \"{schema}\".events SET data = '{{}}'",
        f'DELETE FROM "{schema}".events',
        f'TRUNCATE "{schema}".events',
    ):
        with pytest.raises(psycopg2.Error, match="append-only"):
            pg_server.sql(statement)


# --- The locator ---------------------------------------------------------------------------


def test_journals_in_different_schemas_of_one_database_are_apart(
    tmp_path: Path, pg_server: PgServer
) -> None:
    base = pg_server.url()
    one = child_env(tmp_path / "one", CQRS_JOURNAL=f"{base}?schema=team_one", CQRS_CATCHUP="0")
    two = child_env(tmp_path / "two", CQRS_JOURNAL=f"{base}?schema=team_two", CQRS_CATCHUP="0")
    ok(one, "item", "create", "A")
    ok(two, "item", "create", "B")
    ok(two, "item", "create", "C")
    assert ok(one, "events").count("\n") == 1
    assert ok(two, "events").count("\n") == 2
    # Without ?schema=, the journal lives in the schema `cqrs`.
    default = child_env(tmp_path / "default", CQRS_JOURNAL=base, CQRS_CATCHUP="0")
    ok(default, "item", "create", "D")
    assert pg_server.sql("SELECT count(*) FROM cqrs.events") == [(1,)]


@pytest.mark.parametrize("schema", ["Upper", "a-b", "pg_x", "1a", "x" * 64, 'a"b'])
def test_a_schema_that_is_not_a_plain_name_is_refused(
    tmp_path: Path, pg_server: PgServer, schema: str
) -> None:
    bad = child_env(tmp_path, CQRS_JOURNAL=f"{pg_server.url()}?schema={schema}", CQRS_CATCHUP="0")
    done = cqrs(bad, "item", "create", "Item1")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "schema" in done.stderr


# --- A write during a long batch ----------------------------------------------------------


def test_a_write_during_a_long_batch_waits_for_it_and_says_so(
    env: dict[str, str], pg_url: str
) -> None:
    """A batch of many commands holds the reservation lock from its first append to its
    last insert; a single write started meanwhile waits past the busy timeout (as on
    SQLite), saying so once, and lands after it."""
    ok(env, "item", "create", "Seed")
    journal = open_journal(pg_url)
    holding = threading.Event()
    done = threading.Event()

    def long_batch() -> None:
        with journal.batch() as batch:
            batch.read_streams(["Batch1"])
            batch.append("Batch1", 0, _created("in the batch"), _metadata())
            holding.set()
            done.wait(30)

    thread = threading.Thread(target=long_batch)
    thread.start()
    assert holding.wait(30)
    writer = subprocess.Popen(
        [installed_cqrs(), "item", "create", "Single"],
        env={**env, "CQRS_BUSY_TIMEOUT": "0.3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: writer.poll() is not None, timeout=1.5) is False
    finally:
        done.set()
        thread.join()
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert err.count("held by a batch") == 1
    assert "Item created: Single" in out
    positions = {
        e["stream_id"]: e["position"] for e in map(json.loads, ok(env, "events").splitlines())
    }
    assert positions["Batch1"] < positions["Single"]
    journal.close()


def test_a_lock_held_by_anything_else_is_busy_after_the_timeout(
    env: dict[str, str], pg_url: str, pg_server: PgServer
) -> None:
    import psycopg2

    ok(env, "item", "create", "Seed")
    journal = find_journal(pg_url)
    assert isinstance(journal, PostgresJournal)
    holder = psycopg2.connect(pg_server.url())
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s, %s)", journal.lock_keys)
        done = cqrs({**env, "CQRS_BUSY_TIMEOUT": "0.3"}, "item", "create", "Blocked")
        assert done.returncode == 6, done.stderr
        assert done.stderr.count("\n") == 1 and "retry" in done.stderr
    finally:
        holder.close()
        journal.close()
    assert "Blocked" not in ok(env, "events")


# --- A large first sync from the server -----------------------------------------------


def test_a_large_first_sync_from_the_server_is_built_in_sql_and_equals_a_replay(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal of more than STAGE_MIN events is copied into a temporary file and built
    in SQL (sync/staging.py): the projection is the one a replay through the views
    makes, and the temporary file is gone afterwards."""
    from cqrs_cli.paths import StorePaths
    from cqrs_cli.sync import runner
    from cqrs_cli.sync.runner import sync_projection

    lines = [{"op": "create", "id": f"I{n}", "description": f"item {n} blue"} for n in range(2000)]
    lines += [
        {"op": "update", "id": f"I{n % 2000}", "description": f"red {n}"} for n in range(3500)
    ]
    lines += [{"op": "delete", "id": f"I{n}"} for n in range(0, 2000, 7)]
    env = child_env(tmp_path / "writer", CQRS_JOURNAL=pg_url, CQRS_CATCHUP="0")
    ok(env, "apply", "-", stdin="".join(json.dumps(line) + "\n" for line in lines))
    assert len(lines) > runner.STAGE_MIN

    def built(home: Path, stage_min: int) -> str:
        monkeypatch.setattr(runner, "STAGE_MIN", stage_min)
        report = sync_projection(StorePaths.resolve(home=str(home), journal=pg_url))
        assert report.applied == len(lines)
        assert [p.name for p in home.iterdir() if "staged" in p.name] == []
        reader = {**env, "CQRS_HOME": str(home)}
        return "".join(
            (
                ok(reader, "item", "list", "--json", "--include-deleted"),
                ok(reader, "item", "history", "I3", "--json"),
                ok(reader, "item", "search", "red", "--limit", "5000", "--json"),
            )
        )

    assert built(tmp_path / "sql", runner.STAGE_MIN) == built(tmp_path / "replay", 10**9)


# --- The catch-up after a write, with a server's journal ----------------------------------


def test_a_write_catches_up_this_hosts_projection_and_no_password_is_on_a_command_line(
    tmp_path: Path, pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catch-up a write leaves behind gets the server's locator in its environment
    (readable by its owner only), never on its command line, which any local user sees
    in `ps`; and it does catch the host's projection up."""
    import os as os_module

    from cqrs_cli.paths import StorePaths
    from cqrs_cli.sync import trigger

    locator = pg_server.new_schema_url().replace("postgres@", "postgres:hunter2secret@")
    env = child_env(tmp_path / "home", CQRS_JOURNAL=locator, CQRS_CATCHUP="1")
    ok(env, "item", "create", "Item1")
    ok(env, "sync")  # this host keeps a projection: writes now catch it up
    ok(env, "item", "create", "Item2")
    assert wait_until(lambda: "Item2" in ok(env, "item", "list"), timeout=30)

    spawned: list[tuple[list[str], dict[str, str]]] = []

    def spawn(path: str, argv: list[str], environment: dict[str, str], **_: object) -> int:
        spawned.append((list(argv), dict(environment)))
        return 0

    monkeypatch.setattr(os_module, "posix_spawn", spawn)
    monkeypatch.setenv("CQRS_CATCHUP", "1")
    paths = StorePaths.resolve(home=str(tmp_path / "home"), journal=locator)
    # Until the real catch-up above has let its lock go (it may still be exiting).
    assert wait_until(lambda: trigger.after_write(paths) is not None or bool(spawned), 30)
    ((argv, environment),) = spawned
    assert not any("hunter2secret" in arg for arg in argv)
    assert environment[trigger.JOURNAL_VARIABLE] == locator
