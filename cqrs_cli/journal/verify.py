"""`cqrs journal verify`: prove the journal is what it claims to be.

Checks, in this order: for a journal kept in a file, SQLite's own integrity check and
the file's schema (markers, tables, append-only triggers, journal id); then, on any
backend, through the journal contract: every event in position order (positions
increasing, the hash chain linking each event to the one before, each hash matching
the event's content, the data decoding as its event type); and per-stream version
continuity (1, 2, 3 ... in position order). The first fault, by position, fails it.
"""

from __future__ import annotations

from ..domain.codec import decode
from ..errors import CqrsError, StorageError
from .chain import ChainWalk, bulk_event_hash
from .records import HASHED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .base import Journal
    from .records import RecordedEvent

BATCH = 5000
_BROKEN_LINK = (
    "hash chain broken: prev_hash is neither the previous event's hash nor its item's "
    "previous event's (an event before it was removed, reordered or edited)"
)
_EDITED = "hash does not match the event's content (the event was edited)"


class JournalFault(StorageError):
    """The journal failed verification; `position` is the first bad event, if any."""

    def __init__(self, path: str, position: int | None, problem: str) -> None:
        where = f"at position {position}: " if position is not None else ""
        super().__init__(f"{path}: journal verification failed {where}{problem}")
        self.position = position
        self.problem = problem


class VerifyReport:
    __slots__ = ("checks", "events", "head", "journal_id", "streams")

    def __init__(self) -> None:
        self.checks: list[str] = []
        self.events = 0
        self.head = 0
        self.streams = 0
        self.journal_id = ""

    def to_json(self) -> dict[str, object]:
        return {
            "ok": True,
            "journal_id": self.journal_id,
            "events": self.events,
            "head": self.head,
            "streams": self.streams,
            "checks": self.checks,
        }


def verify(journal: Journal, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """A report of what was checked, or JournalFault naming the first bad position."""
    report = VerifyReport()
    path = journal.locator
    local = journal.local_file()
    if local is not None:
        problem = local.integrity_problem()
        if problem is not None:
            raise JournalFault(path, None, f"SQLite integrity check: {problem}")
        report.checks.append("SQLite integrity check: ok")
        problem = local.schema_problem()
        if problem is not None:
            raise JournalFault(path, None, problem)
        report.checks.append("schema: markers, tables and append-only triggers present")
    report.journal_id = journal.journal_id
    # A server journal's own check (PostgreSQL: transaction ids from another cluster).
    server_check = getattr(journal, "verify_problem", None)
    if server_check is not None:
        problem = server_check()
        if problem is not None:
            raise JournalFault(path, None, problem)
        report.checks.append("transaction ids: all handed out by this server")

    total = journal.head()
    faults: list[tuple[int, str]] = []
    event_hash = bulk_event_hash()
    links = ChainWalk(lambda stream, version: _hash_of(journal, stream, version))
    last_position = 0
    # Without SQL to check them afterwards, stream versions are checked on the way.
    versions: dict[str, int] | None = {} if local is None else None
    while not faults:
        events = journal.read_all(after=last_position, limit=BATCH)
        if not events:
            break
        for event in events:
            position = event.position
            if position <= last_position:
                faults.append((position, f"position does not increase (after {last_position})"))
                break
            if not links.links(event.prev_hash, event.stream_id, event.stream_version):
                faults.append((position, _BROKEN_LINK))
                break
            if event.hash != event_hash(event.prev_hash, *event.as_tuple()[HASHED]):  # type: ignore[arg-type]
                faults.append((position, _EDITED))
                break
            try:
                decode(event.stream_id, event.event_type, event.schema_version, event.data)
            except CqrsError as exc:
                faults.append((position, str(exc)))
                break
            if versions is not None:
                fault = _version_fault(versions, event)
                if fault is not None:
                    faults.append((position, fault))
                    break
            links.follow(event.stream_id, event.hash)
            last_position = position
            report.events += 1
        if progress is not None:
            progress(report.events, max(total, report.events))
    if local is not None:
        stream_fault = local.stream_version_fault()
        if stream_fault is not None:
            faults.append(stream_fault)
    if faults:
        position, problem = min(faults)
        raise JournalFault(path, position, problem)
    report.head = last_position
    if versions is not None:
        report.streams = len(versions)
    else:
        assert local is not None
        report.streams = local.stream_count()
    report.checks.append(
        f"events: {report.events}, positions strictly increasing up to {last_position}"
    )
    report.checks.append(
        "hash chain: every event linked to the one before it (in the journal or in its "
        "item), and unedited"
    )
    report.checks.append(
        f"stream versions: 1, 2, 3 ... in position order, {report.streams} streams"
    )
    records = _check_state_records(journal)
    report.checks.append(f"state records: {records}, each the fold of its stream's events")
    return report


def _hash_of(journal: Journal, stream_id: str, version: int) -> str | None:
    """The hash of a stream's event at `version`, if it has one (for a stream link
    whose head the walk no longer remembers)."""
    for event in journal.read_stream(stream_id, version):
        return event.hash if event.stream_version == version else None
    return None


def _check_state_records(journal: Journal) -> int:
    """Every state record against the fold of its stream up to its version (a record is
    a cache, but a wrong one would slow nothing down and mislead whoever reads it);
    how many there are. JournalFault naming the record's event on the first mismatch."""
    from ..domain.codec import decode_state
    from ..domain.item import INITIAL, evolve

    checked = 0
    after = ""
    while records := journal.state_records(after=after, limit=BATCH):
        for record in records:
            state = INITIAL
            at: RecordedEvent | None = None
            for event in journal.read_stream(record.stream_id):
                if event.stream_version > record.version:
                    break
                state = evolve(
                    state,
                    decode(event.stream_id, event.event_type, event.schema_version, event.data),
                )
                at = event
            if at is None or at.stream_version != record.version or at.hash != record.hash:
                raise JournalFault(
                    journal.locator,
                    at.position if at is not None else None,
                    f"the state record of stream {record.stream_id!r} names version "
                    f"{record.version}, which is not in its events",
                )
            if decode_state(record.data, record.version) != state:
                raise JournalFault(
                    journal.locator,
                    at.position,
                    f"the state record of stream {record.stream_id!r} at version "
                    f"{record.version} is not the fold of its events",
                )
            checked += 1
        after = records[-1].stream_id
    return checked


def _version_fault(versions: dict[str, int], event: RecordedEvent) -> str | None:
    """What is wrong with `event`'s stream version, given each stream's version so far
    (the walk in position order); the same faults as JournalFile.stream_version_fault."""
    before = versions.get(event.stream_id, 0)
    versions[event.stream_id] = max(before, event.stream_version)
    if event.stream_version == before + 1:
        return None
    if event.stream_version <= before:
        return (
            f"stream {event.stream_id!r} version {event.stream_version} "
            "comes before its predecessor"
        )
    return f"stream {event.stream_id!r} jumps to version {event.stream_version}"
