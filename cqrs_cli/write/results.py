"""What a write command returns to its caller."""

from __future__ import annotations

from ..record import Record, set_field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    from ..journal.records import RecordedEvent

    Outcome = Literal["created", "updated", "deleted", "unchanged"]


class PlannedEvent(Record):
    """An event a dry run would append."""

    __slots__ = ("stream_id", "stream_version", "event_type", "schema_version", "data")
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    data: str

    def __init__(
        self, stream_id: str, stream_version: int, event_type: str, schema_version: int, data: str
    ) -> None:
        set_field(self, "stream_id", stream_id)
        set_field(self, "stream_version", stream_version)
        set_field(self, "event_type", event_type)
        set_field(self, "schema_version", schema_version)
        set_field(self, "data", data)

    def envelope(self) -> dict[str, object]:
        import json

        return {
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "event_type": self.event_type,
            "schema_version": self.schema_version,
            "data": json.loads(self.data),
        }


class WriteResult(Record):
    """The outcome of one write command.

    `position` is the journal position the item reached: the token to hand to a read
    (`--min-position`) that must see this write. None only for a dry run that would
    append to an item the journal has never seen.
    """

    __slots__ = (
        "item_id",
        "outcome",
        "version",
        "position",
        "events",
        "already_applied",
        "dry_run",
    )
    item_id: str
    outcome: Outcome
    version: int
    position: int | None
    events: tuple[RecordedEvent | PlannedEvent, ...]
    already_applied: bool
    dry_run: bool

    def __init__(
        self,
        item_id: str,
        outcome: Outcome,
        version: int,
        position: int | None,
        events: tuple[RecordedEvent | PlannedEvent, ...] = (),
        already_applied: bool = False,
        dry_run: bool = False,
    ) -> None:
        set_field(self, "item_id", item_id)
        set_field(self, "outcome", outcome)
        set_field(self, "version", version)
        set_field(self, "position", position)
        set_field(self, "events", events)
        set_field(self, "already_applied", already_applied)
        set_field(self, "dry_run", dry_run)

    def __str__(self) -> str:
        return f"Item {self.outcome}: {self.item_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "outcome": self.outcome,
            "version": self.version,
            "position": self.position,
            "appended": 0 if self.dry_run or self.already_applied else len(self.events),
            "already_applied": self.already_applied,
            "dry_run": self.dry_run,
            "events": [event.envelope() for event in self.events],
        }


OUTCOME_BY_EVENT: dict[str, Outcome] = {
    "ItemCreated": "created",
    "ItemUpdated": "updated",
    "ItemDeleted": "deleted",
}
