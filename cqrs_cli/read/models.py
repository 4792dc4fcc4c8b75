"""What queries return."""

from __future__ import annotations

from ..record import Record, set_field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..sync.catchup_state import CatchUpStatus


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
        set_field(self, "item_id", item_id)
        set_field(self, "description", description)
        set_field(self, "version", version)
        set_field(self, "deleted", bool(deleted))
        set_field(self, "created_at", created_at)
        set_field(self, "updated_at", updated_at)
        set_field(self, "position", position)

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
        set_field(self, "position", position)
        set_field(self, "item_id", item_id)
        set_field(self, "version", version)
        set_field(self, "event_type", event_type)
        set_field(self, "description", description)
        set_field(self, "recorded_at", recorded_at)

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
        set_field(self, "view", view)
        set_field(self, "version", version)
        set_field(self, "checkpoint", checkpoint)
        set_field(self, "lag", lag)
        set_field(self, "updated_at", updated_at)


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
        "catch_up",
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
    catch_up: CatchUpStatus | None
    """The catch-up after writes (None without a projection)."""

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
        catch_up: CatchUpStatus | None = None,
    ) -> None:
        belongs = projection_journal_id is None or projection_journal_id == journal_id
        set_field(self, "journal", journal)
        set_field(self, "projection", projection)
        set_field(self, "journal_id", journal_id)
        set_field(self, "journal_head", journal_head)
        set_field(self, "projection_exists", projection_exists)
        set_field(self, "projection_journal_id", projection_journal_id)
        set_field(self, "belongs", belongs)
        set_field(self, "last_sync_at", last_sync_at)
        set_field(self, "views", views)
        set_field(self, "catch_up", catch_up)

    def to_json(self) -> dict[str, object]:
        data = self.as_dict()
        data["views"] = [view.as_dict() for view in self.views]
        data["catch_up"] = self.catch_up.as_dict() if self.catch_up is not None else None
        return data
