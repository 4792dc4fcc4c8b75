"""Moving a journal: NDJSON export and import (any backend), and online backup (a file).

Export and import go through the journal contract only (journal/base.py), so they move
a journal between any two backends. The export is lossless and deterministic: a header
line, every event with all its columns (ids, positions, hashes, data as its exact JSON
text), and a trailer that makes a truncated file detectable. Import builds a new
journal from it, checking the chain as it goes, so export -> import -> export is
byte-identical and a file that was edited, reordered or cut short is refused with its
line number.

    {"format":"cqrs-journal-export","version":1,"journal_id":"...","schema_version":1}
    {"position":1,"event_id":"...", ... ,"prev_hash":"...","hash":"..."}
    {"end":true,"events":1,"last_hash":"..."}
"""

from __future__ import annotations

import json

from ..domain.codec import decode
from ..errors import CqrsError, StorageError, UsageError
from ..text import json_safe
from .chain import GENESIS, ChainWalk, bulk_event_hash
from .records import COLUMNS, HASHED, RecordedEvent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from .base import Fill, Journal, JournalBatch

SCHEMA_VERSION = 1
"""The version of the event envelope an export carries: the columns of COLUMNS."""

FORMAT = "cqrs-journal-export"
FORMAT_VERSION = 1
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

_TYPES: dict[str, tuple[type, ...]] = {
    "position": (int,),
    "event_id": (str,),
    "stream_id": (str,),
    "stream_version": (int,),
    "event_type": (str,),
    "schema_version": (int,),
    "data": (str,),
    "recorded_at": (str,),
    "command_id": (str,),
    "idempotency_key": (str, type(None)),
    "correlation_id": (str, type(None)),
    "prev_hash": (str,),
    "hash": (str,),
}


def _line(value: dict[str, object]) -> str:
    return json_safe(_encode(value)) + "\n"


def export_lines(journal: Journal, batch: int = 5000) -> Iterator[str]:
    """The export, line by line, read in batches (no read transaction held between)."""
    yield _line(
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "journal_id": journal.journal_id,
            "schema_version": SCHEMA_VERSION,
        }
    )
    after, count, last_hash = 0, 0, GENESIS
    while True:
        events = journal.read_all(after=after, limit=batch)
        if not events:
            break
        for event in events:
            yield _line(dict(zip(COLUMNS, event.as_tuple(), strict=True)))
        count += len(events)
        after, last_hash = events[-1].position, events[-1].hash
    yield _line({"end": True, "events": count, "last_hash": last_hash})


class ImportRefused(StorageError):
    """The export file is not an intact journal export; nothing was written."""


def _parse(raw: bytes, number: int) -> dict[str, object]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UsageError(f"line {number}: not a JSON line of a journal export ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"line {number}: not a JSON object")
    return value


def import_journal(
    lines: Iterable[bytes],
    create: Callable[[str, Fill], int],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[str, int]:
    """Build a new journal from an export; (journal id, events). `create(journal_id,
    fill)` makes the journal (journal.locator.create_journal, for a locator) and lets
    `fill` restore the events into it, all or nothing."""
    numbered = enumerate(lines, start=1)
    first = next(numbered, None)
    if first is None:
        raise UsageError("the export is empty")
    header = _parse(first[1], 1)
    if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        raise UsageError(f"line 1: not a {FORMAT} (version {FORMAT_VERSION}) header")
    journal_id = header.get("journal_id")
    if not isinstance(journal_id, str) or not journal_id:
        raise UsageError("line 1: the header has no journal_id")
    schema = header.get("schema_version")
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise UsageError(f"line 1: schema version {schema!r} is not one this cqrs can import")

    def fill(batch: JournalBatch) -> int:
        return _restore_all(batch, numbered, progress)

    return journal_id, create(journal_id, fill)


def _restore_all(
    batch: JournalBatch,
    numbered: Iterator[tuple[int, bytes]],
    progress: Callable[[int, int], None] | None,
) -> int:
    prev_hash, last_position = GENESIS, 0
    event_hash = bulk_event_hash()
    # Every stream's head is kept (no lookup: nothing is stored before the commit).
    links = ChainWalk(cap=1 << 62)
    number = 1  # the header
    for count, (number, raw) in enumerate(numbered):
        fields = _parse(raw, number)
        if fields.get("end") is True:
            if fields.get("events") != count or fields.get("last_hash") != prev_hash:
                raise ImportRefused(
                    f"line {number}: the trailer does not match the events before it"
                )
            if next(numbered, None) is not None:
                raise UsageError(f"line {number + 1}: lines after the trailer")
            return count
        if set(fields) != set(COLUMNS):
            raise UsageError(f"line {number}: expected the fields {', '.join(COLUMNS)}")
        for name, kinds in _TYPES.items():
            value = fields[name]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise UsageError(f"line {number}: field {name!r} has the wrong type")
        event = RecordedEvent.from_row(tuple(fields[name] for name in COLUMNS))
        if event.position <= last_position:
            raise ImportRefused(f"line {number}: position {event.position} does not increase")
        if not links.links(event.prev_hash, event.stream_id, event.stream_version):
            raise ImportRefused(
                f"line {number}: hash chain broken (events removed, reordered or edited)"
            )
        if event.hash != event_hash(event.prev_hash, *event.as_tuple()[HASHED]):  # type: ignore[arg-type]
            raise ImportRefused(f"line {number}: hash does not match the event (edited)")
        current = batch.stream_version(event.stream_id)
        if event.stream_version != current + 1:
            raise ImportRefused(
                f"line {number}: stream {event.stream_id!r} goes from version {current} "
                f"to {event.stream_version}"
            )
        try:
            decode(event.stream_id, event.event_type, event.schema_version, event.data)
            batch.restore(event)
        except CqrsError as exc:
            raise ImportRefused(f"line {number}: {exc}") from None
        links.follow(event.stream_id, event.hash)
        prev_hash, last_position = event.hash, event.position
        if progress is not None and count % 1000 == 999:
            progress(count + 1, 0)
    raise ImportRefused(f"line {number + 1}: the export ends without its trailer (cut short?)")


def backup(journal: Journal, dest: str) -> tuple[int, int]:
    """A consistent copy of the journal at `dest` (a new file), made while writers go on
    appending; (events, head position) of the copy. Only a journal kept in a file has
    one to copy: for others, UsageError pointing to `cqrs journal export`."""
    from .locator import open_journal

    local = journal.local_file()
    if local is None:
        raise UsageError(
            f"{journal.locator} is not kept in a file, so it cannot be backed up as one; "
            "use `cqrs journal export` instead"
        )
    local.backup_to(dest)
    # Opened for writing (it exists: nothing is created), so that closing this last
    # connection removes the -wal and -shm files a read-only one would leave beside it.
    copy = open_journal(dest)
    try:
        return copy.count_after(0), copy.head()
    finally:
        copy.close()
