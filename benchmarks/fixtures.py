"""The events every row works with, and the prebuilt journal the read rows share.

The plan: `events` events over `events // 4` items, round-robin: the first pass creates
every item, the next three update each of them. Every variant (cqrs, plain sqlite3,
eventsourcing) writes or reads the same plan, so the rows compare like with like.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

from .tasks import TaskResult, TaskSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

EVENTS_PER_ITEM = 4

INSERT = (
    "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, "
    "data, recorded_at, command_id, idempotency_key, correlation_id, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

JournalRow = tuple[str, str, int, str, int, str, str, str, None, None, str, str]


def item_count(events: int, per_item: int = EVENTS_PER_ITEM) -> int:
    return max(1, events // per_item)


def item_name(index: int) -> str:
    return f"item-{index:08d}"


def description(index: int, version: int) -> str:
    if version == 1:
        return f"item number {index}"
    return f"item number {index}, revision {version}"


def plan(events: int, per_item: int = EVENTS_PER_ITEM) -> Iterator[tuple[int, int]]:
    """(item index, stream version) of each event, in journal order."""
    items = item_count(events, per_item)
    for position in range(events):
        yield position % items, position // items + 1


def _fake_uuid(kind: int, number: int) -> str:
    # Unique, version-4 shaped, and a million of them cost nothing to make.
    return f"{kind:08x}-0000-4000-8000-{number:012x}"


def _recorded_at(number: int) -> str:
    seconds, millis = divmod(number, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"2026-01-01T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}000Z"


def journal_rows(
    events: int, *, chained: bool, per_item: int = EVENTS_PER_ITEM
) -> list[JournalRow]:
    """The plan as rows for INSERT, in the journal's stored format. `chained`: real
    hashes, so that cqrs can read and verify the file; else fixed placeholders of the
    same size (the plain baselines do not hash)."""
    hash_of = None
    if chained:
        from cqrs_cli.journal.chain import GENESIS, event_hash

        prev = GENESIS
        hash_of = event_hash
    else:
        prev = "0" * 64
    rows: list[JournalRow] = []
    for number, (item, version) in enumerate(plan(events, per_item)):
        fields = (
            _fake_uuid(1, number),
            item_name(item),
            version,
            "ItemCreated" if version == 1 else "ItemUpdated",
            1,
            json.dumps(
                {"description": description(item, version)},
                ensure_ascii=False,
                separators=(",", ":"),
            ),
            _recorded_at(number),
            _fake_uuid(2, number),
            None,
            None,
        )
        digest = hash_of(prev, *fields) if hash_of else "f" * 64
        rows.append((*fields, prev, digest))
        if hash_of:
            prev = digest
    return rows


def create_line(index: int) -> str:
    """The NDJSON command that creates item `index`: what the apply row feeds cqrs."""
    return f'{{"op":"create","id":"{item_name(index)}","description":"item {index}"}}\n'


def update_line(item: str, number: int) -> str:
    """The NDJSON command that updates `item` (its `number`th update)."""
    return f'{{"op":"update","id":"{item}","description":"revision {number}"}}\n'


LONG_ITEM = "long-item"
SHORT_ITEM = "short-item"


def build_long_item_store(spec: TaskSpec) -> TaskResult:
    """A cqrs home whose journal holds one item with `events` events (a create, then
    updates) and one with a single event, written by `cqrs apply` (the CLI's run_apply,
    in one transaction): with the state records the write side saves as it goes."""
    from cqrs_cli.cli.apply_command import run_apply
    from cqrs_cli.cli.state import state

    home = os.path.join(spec.workdir, f"long-{spec.tag}")
    source = os.path.join(spec.workdir, f"long-{spec.tag}.ndjson")
    with open(source, "w", encoding="utf-8") as handle:
        handle.write(f'{{"op":"create","id":"{LONG_ITEM}","description":"created"}}\n')
        for number in range(1, spec.events):
            handle.write(update_line(LONG_ITEM, number))
        handle.write(f'{{"op":"create","id":"{SHORT_ITEM}","description":"created"}}\n')
    state.journal = os.path.join(home, "journal.db")
    state.projection = os.path.join(home, "projection.db")
    state.quiet = True
    start = time.perf_counter()
    os.makedirs(home, exist_ok=True)
    if run_apply(source) != 0:
        raise RuntimeError("cqrs apply of the long item's events failed")
    os.unlink(source)
    return TaskResult(spec.events, time.perf_counter() - start, {"path": home})


def created_rows(events: int) -> list[JournalRow]:
    """The rows cqrs appends for `create_line(0)` ... `create_line(events - 1)`, in its
    stored format: time-ordered UUID v7 event and command ids, one recorded time, the
    JSON data and the real hash chain. The apply baseline inserts these, so that it
    writes the same rows, not merely rows of the same size."""
    from cqrs_cli.clock import utc_now
    from cqrs_cli.domain.codec import encode
    from cqrs_cli.domain.item import ItemCreated
    from cqrs_cli.ids import new_uuid
    from cqrs_cli.journal.chain import GENESIS, event_hash

    recorded_at = utc_now()
    prev = GENESIS
    rows: list[JournalRow] = []
    for index in range(events):
        name = item_name(index)
        command_id = new_uuid()
        event_type, schema_version, data = encode(ItemCreated(name, f"item {index}"))
        event_id = new_uuid()
        digest = event_hash(
            prev, event_id, name, 1, event_type, schema_version, data, recorded_at, command_id,
            None, None,
        )  # fmt: skip
        rows.append(
            (event_id, name, 1, event_type, schema_version, data, recorded_at, command_id,
             None, None, prev, digest)
        )  # fmt: skip
        prev = digest
    return rows


def build_journal(spec: TaskSpec) -> TaskResult:
    """A real cqrs journal (created by cqrs itself) holding the plan, hash chain and
    all, written with one executemany. Also checks that the baselines' copy of the
    events table still matches the journal's."""
    return _write_journal(spec, spec.events, EVENTS_PER_ITEM)


def build_split_journal(spec: TaskSpec) -> TaskResult:
    """As `build_journal`, for the incremental sync row: `events` creates of distinct
    items, then one update of each (2 x `events` events). Its first half is the
    projection already synced, its second the catch-up measured."""
    return _write_journal(spec, 2 * spec.events, 2)


def _write_journal(spec: TaskSpec, events: int, per_item: int) -> TaskResult:
    from cqrs_cli.journal.sqlite_journal import SqliteJournal

    from .baselines import check_schema_matches

    path = spec.path("journal")
    SqliteJournal.open(path).close()
    rows = journal_rows(events, chained=True, per_item=per_item)
    start = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        check_schema_matches(conn)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return TaskResult(
        events,
        time.perf_counter() - start,
        {"path": path, "bytes": str(os.path.getsize(path))},
    )


def build_item_store(spec: TaskSpec) -> TaskResult:
    """A cqrs home holding `events` items (one create each), synced: what `cqrs item
    get` reads. Made with cqrs's own batch path, so it is a real journal and projection."""
    from cqrs_cli import CommandService, QueryService
    from cqrs_cli.domain.item import CreateItem
    from cqrs_cli.write.ndjson import BatchCommand

    home = os.path.join(spec.workdir, f"items-{spec.tag}")
    start = time.perf_counter()
    commands = (
        BatchCommand(n + 1, CreateItem(item_name(n), description(n, 1))) for n in range(spec.events)
    )
    with CommandService(home) as service:
        service.apply(commands)
    with QueryService(home) as queries:
        queries.sync()
    return TaskResult(spec.events, time.perf_counter() - start, {"path": home})
