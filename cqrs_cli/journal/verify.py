"""`cqrs journal verify`: prove the journal is what it claims to be.

Checks, in this order: SQLite's own integrity check; the file's schema (markers,
tables, append-only triggers, journal id); every event in position order (positions
increasing, the hash chain linking each event to the one before, each hash matching
the event's content, the data decoding as its event type); and per-stream version
continuity (1, 2, 3 ... in position order). The first fault, by position, fails it.
"""

from __future__ import annotations

from ..domain.codec import decode
from ..errors import CqrsError, StorageError
from .chain import GENESIS, bulk_event_hash
from .records import HASHED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .sqlite_journal import SqliteJournal

BATCH = 5000
_BROKEN_LINK = (
    "hash chain broken: prev_hash is not the previous event's hash "
    "(an event before it was removed, reordered or edited)"
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


def verify(
    journal: SqliteJournal, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """A report of what was checked, or JournalFault naming the first bad position."""
    report = VerifyReport()
    path = journal.path
    problem = journal.integrity_problem()
    if problem is not None:
        raise JournalFault(path, None, f"SQLite integrity check: {problem}")
    report.checks.append("SQLite integrity check: ok")
    problem = journal.schema_problem()
    if problem is not None:
        raise JournalFault(path, None, problem)
    report.journal_id = journal.journal_id
    report.checks.append("schema: markers, tables and append-only triggers present")

    total = journal.head()
    faults: list[tuple[int, str]] = []
    event_hash = bulk_event_hash()
    prev_hash = GENESIS
    last_position = 0
    while not faults:
        events = journal.read_all(after=last_position, limit=BATCH)
        if not events:
            break
        for event in events:
            position = event.position
            if position <= last_position:
                faults.append((position, f"position does not increase (after {last_position})"))
                break
            if event.prev_hash != prev_hash:
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
            prev_hash = event.hash
            last_position = position
            report.events += 1
        if progress is not None:
            progress(report.events, max(total, report.events))
    stream_fault = journal.stream_version_fault()
    if stream_fault is not None:
        faults.append(stream_fault)
    if faults:
        position, problem = min(faults)
        raise JournalFault(path, position, problem)
    report.head = last_position
    report.streams = journal.stream_count()
    report.checks.append(
        f"events: {report.events}, positions strictly increasing up to {last_position}"
    )
    report.checks.append("hash chain: every event linked to the one before, and unedited")
    report.checks.append(
        f"stream versions: 1, 2, 3 ... in position order, {report.streams} streams"
    )
    return report
