"""What goes into the journal and what comes out of it."""

from __future__ import annotations


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


class RecordedEvent:
    """An event as the journal holds it: the envelope around the domain event's data.

    Read-only by convention (a plain slots class: sync builds a million of these, and a
    frozen class would cost several times as much to construct). Field order matches
    `COLUMNS`, the order of the journal's columns.
    """

    __slots__ = (
        "command_id",
        "correlation_id",
        "data",
        "event_id",
        "event_type",
        "hash",
        "idempotency_key",
        "position",
        "prev_hash",
        "recorded_at",
        "schema_version",
        "stream_id",
        "stream_version",
    )

    def __init__(
        self,
        position: int,
        event_id: str,
        stream_id: str,
        stream_version: int,
        event_type: str,
        schema_version: int,
        data: str,
        recorded_at: str,
        command_id: str,
        idempotency_key: str | None,
        correlation_id: str | None,
        prev_hash: str,
        hash: str,
    ) -> None:
        self.position = position
        self.event_id = event_id
        self.stream_id = stream_id
        self.stream_version = stream_version
        self.event_type = event_type
        self.schema_version = schema_version
        self.data = data
        self.recorded_at = recorded_at
        self.command_id = command_id
        self.idempotency_key = idempotency_key
        self.correlation_id = correlation_id
        self.prev_hash = prev_hash
        self.hash = hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordedEvent):
            return NotImplemented
        return self.as_tuple() == other.as_tuple()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"RecordedEvent(position={self.position}, stream_id={self.stream_id!r}, "
            f"stream_version={self.stream_version}, event_type={self.event_type!r})"
        )

    def as_tuple(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)

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


HASHED = slice(1, 11)
"""The columns the hash covers after prev_hash (event_id .. correlation_id), as a slice
of COLUMNS and of RecordedEvent.as_tuple()."""

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


class AppendResult:
    """What an append did: the events now in the journal for this command, and whether
    they were appended now or found there already under the same idempotency key."""

    __slots__ = ("already_applied", "events")

    def __init__(self, events: list[RecordedEvent], already_applied: bool) -> None:
        self.events = events
        self.already_applied = already_applied
