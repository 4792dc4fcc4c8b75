"""What goes into the journal and what comes out of it."""

from __future__ import annotations

TYPE_CHECKING = False


class NewEvent:
    """An event about to be appended: the journal adds position, version and hashes."""

    __slots__ = ("data", "event_id", "event_type", "schema_version")

    def __init__(self, event_id: str, event_type: str, schema_version: int, data: str) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.schema_version = schema_version
        self.data = data


class AppendMetadata:
    """Facts about the command that produced a batch of events."""

    __slots__ = ("command_id", "correlation_id", "idempotency_key", "recorded_at")

    def __init__(
        self,
        recorded_at: str,
        command_id: str,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.recorded_at = recorded_at
        self.command_id = command_id
        self.idempotency_key = idempotency_key
        self.correlation_id = correlation_id


COLUMNS = (
    "position",
    "event_id",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "data",
    "recorded_at",
    "command_id",
    "idempotency_key",
    "correlation_id",
    "prev_hash",
    "hash",
)
"""The journal's columns, in the order of its table and of RecordedEvent's fields."""

BUILD_COLUMNS = (
    "position",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "data",
    "recorded_at",
    "hash",
)
"""The columns of the journal's events that a view's build in SQL may read (views/
base.py, JOURNAL): what `Journal.read_for_build` returns, and what a journal without a
file of its own copies for a build (sync/staging.py)."""


def build_rows(events: list[RecordedEvent], up_to: int) -> list[tuple[object, ...]]:
    """`events` up to position `up_to`, as rows of BUILD_COLUMNS."""
    return [
        (
            e.position,
            e.stream_id,
            e.stream_version,
            e.event_type,
            e.schema_version,
            e.data,
            e.recorded_at,
            e.hash,
        )
        for e in events
        if e.position <= up_to
    ]


# A named tuple: a row from SQLite becomes an event with one C call (`from_row`), and an
# appended event is already the row its insert binds. (A slots class cost about 1 us per
# event to build, a fifth of `cqrs apply`'s work per command.) mypy sees the typed
# NamedTuple; at run time it is the same class made by collections.namedtuple, which
# does not import `typing` (start-up). tests/test_journal.py checks the two agree.
if TYPE_CHECKING:
    from typing import NamedTuple

    class _EventRow(NamedTuple):
        position: int
        event_id: str
        stream_id: str
        stream_version: int
        event_type: str
        schema_version: int
        data: str
        recorded_at: str
        command_id: str
        idempotency_key: str | None
        correlation_id: str | None
        prev_hash: str
        hash: str

else:
    from collections import namedtuple

    _EventRow = namedtuple("_EventRow", COLUMNS)


class RecordedEvent(_EventRow):
    """An event as the journal holds it: the envelope around the domain event's data,
    its fields in the order of the journal's columns (`COLUMNS`)."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: tuple[object, ...]) -> RecordedEvent:
        """The event stored as `row` (all of COLUMNS, in order). No checks: the journal's
        schema guarantees the types."""
        return _new_tuple(cls, row)

    def __repr__(self) -> str:
        return (
            f"RecordedEvent(position={self.position}, stream_id={self.stream_id!r}, "
            f"stream_version={self.stream_version}, event_type={self.event_type!r})"
        )

    def as_tuple(self) -> tuple[object, ...]:
        return tuple(self)

    def envelope(self) -> dict[str, object]:
        """The event as a JSON-ready dict: the shape of `--json` and NDJSON output."""
        import json

        return {
            "position": self.position,
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "data": json.loads(self.data),
            "recorded_at": self.recorded_at,
            "metadata": {
                "command_id": self.command_id,
                "idempotency_key": self.idempotency_key,
                "correlation_id": self.correlation_id,
            },
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


_new_tuple = tuple.__new__


HASHED = slice(1, 11)
"""The columns the hash covers after prev_hash (event_id .. correlation_id), as a slice
of COLUMNS and of RecordedEvent.as_tuple()."""


class AppendResult:
    """What an append did: the events now in the journal for this command, and whether
    they were appended now or found there already under the same idempotency key."""

    __slots__ = ("already_applied", "events")

    def __init__(self, events: list[RecordedEvent], already_applied: bool) -> None:
        self.events = events
        self.already_applied = already_applied


# A named tuple, for the reasons RecordedEvent is one (see above).
if TYPE_CHECKING:

    class StateRecord(NamedTuple):
        """A stream's state as of one of its events, stored beside the journal so that
        a writer need not fold the whole stream: a cache, never the truth. `data` is the
        domain's encoding of the state (domain/codec.py); `hash` is the hash of the
        event at `version`, by which a reader checks that the record still belongs to
        that stream's history (a journal restored from a backup, or a damaged record,
        fails the check and the stream is folded from its events instead)."""

        stream_id: str
        version: int
        hash: str
        data: str

else:
    StateRecord = namedtuple("StateRecord", ("stream_id", "version", "hash", "data"))


def state_checksum(record: StateRecord) -> str:
    """The checksum a stored state record carries beside its fields, so that a damaged
    row reads as no record (every backend that stores records uses it)."""
    from .chain import digest

    stream_id, version, hash, data = record
    return digest(f"{len(stream_id)}:{stream_id}{version}:{hash}{data}")


def intact_state(row: tuple[object, ...]) -> StateRecord | None:
    """The state record a stored row (stream_id, version, hash, data, checksum) holds,
    or None if the row was damaged (its checksum no longer matches): a damaged record
    is as good as none."""
    stream_id, version, hash, data, checksum = row
    if not (
        isinstance(stream_id, str)
        and isinstance(version, int)
        and isinstance(hash, str)
        and isinstance(data, str)
    ):
        return None
    record = StateRecord(stream_id, version, hash, data)
    return record if checksum == state_checksum(record) else None
