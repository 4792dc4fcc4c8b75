"""What queries return."""

from __future__ import annotations

from ..record import Record


class ItemView(Record):
    """An item as the projection shows it. Its text form is the seed's: `Item1: text`."""

    __slots__ = (
        "item_id",
        "description",
        "version",
        "deleted",
        "created_at",
        "updated_at",
        "position",
    )
    item_id: str
    description: str
    version: int
    deleted: bool
    created_at: str
    updated_at: str
    position: int

    def __init__(
        self,
        item_id: str,
        description: str,
        version: int,
        deleted: bool,
        created_at: str,
        updated_at: str,
        position: int,
    ) -> None:
        self._set(
            item_id=item_id,
            description=description,
            version=version,
            deleted=bool(deleted),
            created_at=created_at,
            updated_at=updated_at,
            position=position,
        )

    def __str__(self) -> str:
        return f"{self.item_id}: {self.description}"

    def to_json(self) -> dict[str, object]:
        return self.as_dict()


class HistoryEntry(Record):
    """One change of an item."""

    __slots__ = ("position", "item_id", "version", "event_type", "description", "recorded_at")
    position: int
    item_id: str
    version: int
    event_type: str
    description: str | None
    recorded_at: str

    def __init__(
        self,
        position: int,
        item_id: str,
        version: int,
        event_type: str,
        description: str | None,
        recorded_at: str,
    ) -> None:
        self._set(
            position=position,
            item_id=item_id,
            version=version,
            event_type=event_type,
            description=description,
            recorded_at=recorded_at,
        )

    def to_json(self) -> dict[str, object]:
        return self.as_dict()


class ViewStatus(Record):
    __slots__ = ("view", "version", "checkpoint", "lag", "updated_at")
    view: str
    version: int
    checkpoint: int
    lag: int
    updated_at: str | None

    def __init__(
        self, view: str, version: int, checkpoint: int, lag: int, updated_at: str | None
    ) -> None:
        self._set(view=view, version=version, checkpoint=checkpoint, lag=lag, updated_at=updated_at)


class Status(Record):
    """Where the journal and the projection stand."""

    __slots__ = (
        "journal",
        "projection",
        "journal_id",
        "journal_head",
        "projection_exists",
        "projection_journal_id",
        "belongs",
        "last_sync_at",
        "views",
    )
    journal: str
    projection: str
    journal_id: str | None
    journal_head: int
    projection_exists: bool
    projection_journal_id: str | None
    belongs: bool
    last_sync_at: str | None
    views: tuple[ViewStatus, ...]

    def __init__(
        self,
        journal: str,
        projection: str,
        journal_id: str | None,
        journal_head: int,
        projection_exists: bool,
        projection_journal_id: str | None,
        last_sync_at: str | None,
        views: tuple[ViewStatus, ...],
    ) -> None:
        belongs = projection_journal_id is None or projection_journal_id == journal_id
        self._set(
            journal=journal,
            projection=projection,
            journal_id=journal_id,
            journal_head=journal_head,
            projection_exists=projection_exists,
            projection_journal_id=projection_journal_id,
            belongs=belongs,
            last_sync_at=last_sync_at,
            views=views,
        )

    def to_json(self) -> dict[str, object]:
        data = self.as_dict()
        data["views"] = [view.as_dict() for view in self.views]
        return data
