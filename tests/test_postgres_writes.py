"""A single command's write on PostgreSQL, which takes one round trip when it can.

A create is first tried on the item as new, without reading it; a command's one event
goes through the server function append_event; the stream's version is not read again
inside the batch, since the unique constraint refuses a stale append at commit. These
tests hold what must stay true of that path: a create of an existing item is refused
as before and leaves the journal sound, keys and state records take the same path,
a journal made by an earlier cqrs (without append_event) is upgraded by its first
write, or written through append_one by a role that may not upgrade it, and a batch of
many commands reserves before it reads, so that a single write racing it waits.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from common import child_env, installed_cqrs, run_cqrs
from pg_server import PgServer, pg_server, pg_url

from cqrs_cli import CommandService
from cqrs_cli.journal.locator import open_journal
from cqrs_cli.journal.postgres_journal import PostgresBatch, PostgresJournal
from cqrs_cli.journal.records import AppendMetadata, NewEvent, RecordedEvent

__all__ = ["pg_server", "pg_url"]


def _env(home: Path, journal: str) -> dict[str, str]:
    return child_env(home, CQRS_JOURNAL=journal, CQRS_CATCHUP="0")


def _cqrs(env: dict[str, str], *argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return run_cqrs(installed_cqrs(), *argv, stdin=stdin, env=env, text=True)


def _schema(url: str) -> str:
    return url.rpartition("schema=")[2]


def _has_append_event(server: PgServer, url: str) -> bool:
    found = server.sql(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        f"WHERE p.proname = 'append_event' AND n.nspname = '{_schema(url)}'"
    )
    return found == [(1,)]


def test_a_create_of_an_existing_item_is_refused_as_on_sqlite_and_the_journal_stays_sound(
    tmp_path: Path, pg_url: str
) -> None:
    server_env = _env(tmp_path / "pg-home", pg_url)
    file_env = _env(tmp_path / "file-home", str(tmp_path / "journal.db"))
    refused = []
    for env in (server_env, file_env):
        assert _cqrs(env, "item", "create", "Item1", "-d", "first").returncode == 0
        for extra in ((), ("--expect-version", "0"), ("--idempotency-key", "k")):
            again = _cqrs(env, "item", "create", "Item1", "-d", "second", *extra)
            refused.append((again.returncode, again.stderr.replace(env["CQRS_JOURNAL"], "J")))
        assert _cqrs(env, "item", "create", "Item2").returncode == 0
    assert refused[:3] == refused[3:]
    assert refused[0][0] != 0 and "already exists" in refused[0][1]
    assert refused[1][0] == 4 and "expected version 0" in refused[1][1]
    events = [json.loads(line) for line in _cqrs(server_env, "events").stdout.splitlines()]
    assert [(e["stream_id"], e["event_type"]) for e in events] == [
        ("Item1", "ItemCreated"),
        ("Item2", "ItemCreated"),
    ]
    assert events[0]["data"]["description"] == "first"
    positions = [e["position"] for e in events]
    assert positions == sorted(set(positions))
    assert _cqrs(server_env, "journal", "verify").returncode == 0
    # The refused attempt may have used a position (gaps are allowed): a move to a
    # file and back keeps every position, byte for byte.
    exported = _cqrs(server_env, "journal", "export").stdout
    moved = _env(tmp_path / "moved-home", str(tmp_path / "moved.db"))
    assert _cqrs(moved, "journal", "import", "-", stdin=exported.encode()).returncode == 0
    assert _cqrs(moved, "journal", "export").stdout == exported
    assert _cqrs(server_env, "sync").returncode == 0
    listed = json.loads(_cqrs(server_env, "item", "list", "--json").stdout)
    assert [(i["item_id"], i["description"]) for i in listed] == [("Item1", "first"), ("Item2", "")]


def test_keys_and_state_records_take_the_one_event_path_and_stay_sound(
    tmp_path: Path, pg_url: str
) -> None:
    journal = open_journal(pg_url)
    assert isinstance(journal, PostgresJournal)
    service = CommandService(journal=journal, catch_up=False)
    first = service.create_item("Long", "v0", idempotency_key="make-long")
    assert first.outcome == "created"
    for n in range(1, 60):
        service.update_item("Long", f"v{n}", idempotency_key=f"update-{n}")
    record = journal.read_state("Long")
    assert record is not None and record.version == 50
    assert record.hash == journal.read_stream("Long", 50)[0].hash
    # A retried key is found, and appends nothing.
    again = service.create_item("Long", "v0", idempotency_key="make-long")
    assert again.already_applied
    assert service.update_item("Long", "v59", idempotency_key="update-59").already_applied
    # The next write decides from the record: the state it reaches is the fold's.
    assert service.update_item("Long", "last").version == 61
    assert journal.append_event
    journal.close()
    env = _env(tmp_path / "home", pg_url)
    assert _cqrs(env, "journal", "verify").returncode == 0
    assert _cqrs(env, "sync").returncode == 0
    got = json.loads(_cqrs(env, "item", "get", "Long", "--json").stdout)
    assert (got["description"], got["version"]) == ("last", 61)


def test_a_journal_made_by_an_earlier_cqrs_gets_append_event_at_its_first_write(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    env = _env(tmp_path / "home", pg_url)
    assert _cqrs(env, "item", "create", "Before").returncode == 0
    assert _has_append_event(pg_server, pg_url)
    # The journal as the cqrs before append_event made it.
    pg_server.sql(f'DROP FUNCTION "{_schema(pg_url)}".append_event')
    assert not _has_append_event(pg_server, pg_url)
    done = _cqrs(env, "item", "create", "After")
    assert done.returncode == 0, done.stderr
    assert "cqrs:" not in done.stderr  # no note, no warning: the upgrade is silent
    assert _has_append_event(pg_server, pg_url)
    assert _cqrs(env, "journal", "verify").returncode == 0
    assert _cqrs(env, "sync").returncode == 0
    listed = json.loads(_cqrs(env, "item", "list", "--json").stdout)
    assert [i["item_id"] for i in listed] == ["After", "Before"]


@pytest.fixture
def writer_role(pg_server: PgServer, pg_url: str) -> str:
    """A role that may read and append to the journal at pg_url but not create in its
    schema; its locator. The journal exists, without append_event."""
    schema = _schema(pg_url)
    role = f"writer_{schema}"
    open_journal(pg_url).close()
    pg_server.sql(
        f'DROP FUNCTION "{schema}".append_event; '
        f"CREATE ROLE {role} LOGIN; "
        f'GRANT USAGE ON SCHEMA "{schema}" TO {role}; '
        f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "{schema}" TO {role}; '
        f'GRANT UPDATE ON "{schema}".stream_states TO {role}; '
        f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}'
    )
    return pg_url.replace("postgresql://postgres@", f"postgresql://{role}@")


def test_a_writer_that_may_not_upgrade_the_journal_writes_through_append_one(
    tmp_path: Path, pg_server: PgServer, pg_url: str, writer_role: str
) -> None:
    env = _env(tmp_path / "home", writer_role)
    for argv in (
        ("item", "create", "Item1"),
        ("item", "update", "Item1", "changed", "--idempotency-key", "k1"),
        ("item", "update", "Item1", "changed", "--idempotency-key", "k1"),
        ("item", "create", "Item2"),
    ):
        done = _cqrs(env, *argv)
        assert done.returncode == 0, (argv, done.stderr)
    assert not _has_append_event(pg_server, pg_url)
    events = [json.loads(line) for line in _cqrs(env, "events").stdout.splitlines()]
    assert [(e["stream_id"], e["stream_version"]) for e in events] == [
        ("Item1", 1),
        ("Item1", 2),
        ("Item2", 1),
    ]
    assert _cqrs(_env(tmp_path / "owner", pg_url), "journal", "verify").returncode == 0


def test_a_batch_reserves_before_it_reads_so_a_racing_write_waits_instead_of_failing_it(
    pg_url: str,
) -> None:
    journal = open_journal(pg_url)
    other = open_journal(pg_url)
    try:
        CommandService(journal=journal, catch_up=False).create_item("Shared", "first")
        racing = CommandService(journal=other, catch_up=False)
        results: list[object] = []
        with journal.batch() as batch:
            assert batch.read_streams(["Shared"])["Shared"][-1].stream_version == 1
            writer = threading.Thread(
                target=lambda: results.append(racing.update_item("Shared", "theirs"))
            )
            writer.start()
            writer.join(0.5)
            assert writer.is_alive()  # waiting for the batch, not writing version 2
            mine = NewEvent("mine-1", "ItemUpdated", 1, '{"description":"mine"}')
            batch.append("Shared", 1, [mine], AppendMetadata("2026-01-01T00:00:00Z", "c-mine"))
        writer.join(30)
        assert len(results) == 1
        stream = journal.read_stream("Shared")
        assert [(e.stream_version, e.data) for e in stream] == [
            (1, '{"description":"first"}'),
            (2, '{"description":"mine"}'),
            (3, '{"description":"theirs"}'),
        ]
    finally:
        journal.close()
        other.close()


def _shared_item(pg_url: str) -> None:
    journal = open_journal(pg_url)
    try:
        CommandService(journal=journal, catch_up=False).create_item("Shared", "first")
    finally:
        journal.close()


def _batch_update(pg_url: str, description: str, seen: list[int]) -> None:
    """A batch of one update of Shared, as `cqrs apply` makes it: read, then append;
    `seen` gets the version it read."""
    journal = open_journal(pg_url)
    try:
        with journal.batch() as batch:
            version = batch.read_streams(["Shared"])["Shared"][-1].stream_version
            seen.append(version)
            event = NewEvent(
                f"e-{description}", "ItemUpdated", 1, json.dumps({"description": description})
            )
            batch.append("Shared", version, [event], AppendMetadata("t", f"c-{description}"))
    finally:
        journal.close()


IN_FLIGHT = {
    # What a single command's SINGLE_EVENT, or SINGLE (append_one: a journal made before
    # append_event, written by a role that may not upgrade it), sends before its COMMIT.
    "append_event": (
        "SELECT append_event(%(k1)s, %(k2)s, 'e-inflight', 'Shared', 2, 'ItemUpdated', 1, "
        "'{\"description\":\"in flight\"}', 't', 'c-inflight', NULL, NULL, %(h)s, %(h)s, "
        "NULL, NULL)"
    ),
    "append_one": (
        "SELECT append_one(%(k1)s, %(k2)s, ARRAY['e-inflight'], ARRAY['Shared'], ARRAY[2], "
        "ARRAY['ItemUpdated'], ARRAY[1], ARRAY['{\"description\":\"in flight\"}'], "
        "ARRAY['t'], ARRAY['c-inflight'], ARRAY[NULL], ARRAY[NULL], ARRAY[%(h)s], "
        "ARRAY[%(h)s], '{}', '{}', '{}', '{}', '{}', '{}', '{}')"
    ),
}


def _uncommitted(pg_url: str, statement: str) -> Any:
    """A connection of its own to the journal at pg_url, in the transaction `statement`
    opened (psycopg2 begins one), not committed."""
    import psycopg2

    conn = psycopg2.connect(pg_url.partition("?")[0], options=f"-c search_path={_schema(pg_url)}")
    journal = open_journal(pg_url)
    assert isinstance(journal, PostgresJournal)
    k1, k2 = journal.lock_keys
    journal.close()
    with conn.cursor() as cur:
        cur.execute(statement, {"k1": k1, "k2": k2, "h": "0" * 64})
    return conn


@pytest.mark.parametrize("function", sorted(IN_FLIGHT))
def test_a_batch_reads_only_after_a_write_in_flight_has_committed(
    pg_url: str, function: str
) -> None:
    """A single write that took its position before the batch began, and has not yet
    committed: the batch waits for it, then reads its event, instead of reading the
    item without it and failing at its insert."""
    _shared_item(pg_url)
    in_flight = _uncommitted(pg_url, IN_FLIGHT[function])
    seen: list[int] = []
    batch = threading.Thread(target=_batch_update, args=(pg_url, "batch", seen))
    try:
        batch.start()
        batch.join(0.5)
        assert batch.is_alive() and seen == []  # waiting, not reading yet
        in_flight.commit()
    finally:
        in_flight.close()
    batch.join(30)
    assert seen == [2]
    journal = open_journal(pg_url)
    assert [e.stream_version for e in journal.read_stream("Shared")] == [1, 2, 3]
    journal.close()


def test_a_batch_behind_a_write_left_open_is_busy_and_writes_nothing(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction that has written to the journal and stays open (an admin's
    session, say) holds a batch back only up to the busy timeout: exit 6, nothing
    written, and the reservation given back for the writes after it."""
    _shared_item(pg_url)
    left_open = _uncommitted(pg_url, "LOCK TABLE events IN ROW EXCLUSIVE MODE")
    try:
        env = _env(tmp_path / "home", pg_url)
        env["CQRS_BUSY_TIMEOUT"] = "0.5"
        done = _cqrs(
            env, "apply", "-", stdin=b'{"op": "update", "id": "Shared", "description": "x"}\n'
        )
        assert done.returncode == 6, done.stderr
        assert "busy timeout" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert _cqrs(env, "item", "update", "Shared", "single").returncode == 0
    finally:
        left_open.rollback()
        left_open.close()
    journal = open_journal(pg_url)
    assert [e.data for e in journal.read_stream("Shared")][1:] == ['{"description":"single"}']
    journal.close()


def test_a_batch_reads_only_after_the_batch_before_it_has_committed(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch one has inserted and given up the reservation, and not yet committed;
    batch two, reserving after it, reads the item with batch one's event in it."""

    _shared_item(pg_url)
    released, go = threading.Event(), threading.Event()
    flush = PostgresBatch._flush

    def flush_then_wait(batch: PostgresBatch, release: bool = False) -> None:
        flush(batch, release)
        if release and not released.is_set():
            released.set()  # batch one: between its reservation's end and COMMIT
            assert go.wait(30)

    monkeypatch.setattr(PostgresBatch, "_flush", flush_then_wait)
    first_seen: list[int] = []
    second_seen: list[int] = []
    first = threading.Thread(target=_batch_update, args=(pg_url, "one", first_seen))
    second = threading.Thread(target=_batch_update, args=(pg_url, "two", second_seen))
    first.start()
    assert released.wait(30)
    second.start()
    second.join(0.5)
    assert second.is_alive() and second_seen == []
    go.set()
    first.join(30)
    second.join(30)
    assert (first_seen, second_seen) == ([1], [2])
    journal = open_journal(pg_url)
    stream = journal.read_stream("Shared")
    assert [(e.stream_version, e.event_id) for e in stream][1:] == [(2, "e-one"), (3, "e-two")]
    journal.close()


def test_an_error_after_the_commit_is_a_success_and_never_a_second_append(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The followers' notice goes after the append's COMMIT, in the same string: an
    error there (a full notice queue, a lock timeout the role sets) must not make a
    committed write look failed, nor be retried into a second append."""
    from cqrs_cli.journal import postgres_journal

    failing_notice = (
        "SELECT %s, %s; DO $$ BEGIN RAISE EXCEPTION 'no notice' USING ERRCODE = '55P03'; END $$"
    )
    monkeypatch.setattr(
        postgres_journal,
        "SINGLE_EVENT",
        postgres_journal.SINGLE_EVENT.replace("SELECT pg_notify(%s, %s)", failing_notice),
    )
    # As if a batch held the lock: a lock timeout would then be waited out and retried.
    monkeypatch.setattr(PostgresBatch, "_batch_holds_the_lock", lambda self: True)
    journal = open_journal(pg_url)
    service = CommandService(journal=journal, catch_up=False)
    created = service.create_item("Once", "first")
    assert (created.outcome, created.version) == ("created", 1)
    stream = journal.read_stream("Once")
    assert [(e.stream_version, e.position) for e in stream] == [(1, created.position)]
    updated = service.update_item("Once", "second")
    assert (updated.outcome, updated.version) == ("updated", 2)
    assert len(journal.read_stream("Once")) == 2
    journal.close()


def test_a_retry_racing_its_first_attempt_is_already_applied_with_a_pinned_version(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client retries `update --expect-version 1 --idempotency-key k1` while its first
    attempt is still under way: the retry finds no key, the first attempt commits, the
    retry's insert is refused. As on SQLite, the retry is "already applied", not a
    version conflict."""
    journal = open_journal(pg_url)
    other = open_journal(pg_url)
    CommandService(journal=journal, catch_up=False).create_item("Item", "a")
    first_attempt = CommandService(journal=other, catch_up=False)
    find = PostgresBatch.find_by_idempotency_keys
    raced: list[object] = []

    def racing(batch: PostgresBatch, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        found = find(batch, keys)
        if batch._journal is journal and not raced:
            raced.append(
                first_attempt.update_item("Item", "b", expected_version=1, idempotency_key="k1")
            )
        return found

    monkeypatch.setattr(PostgresBatch, "find_by_idempotency_keys", racing)
    retry = CommandService(journal=journal, catch_up=False).update_item(
        "Item", "b", expected_version=1, idempotency_key="k1"
    )
    assert raced and retry.already_applied
    assert [e.stream_version for e in journal.read_stream("Item")] == [1, 2]
    journal.close()
    other.close()
