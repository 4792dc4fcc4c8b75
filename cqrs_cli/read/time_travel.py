"""Time travel: an item's state at an earlier journal position or time, folded from the
journal itself (the projection only knows the present) with the items view's own fold,
so that it shows what a projection synced to that point would."""

from __future__ import annotations

from datetime import UTC

from ..domain.codec import decode
from ..domain.item import ItemNotFound
from ..domain.validation import validate_item_id
from ..errors import UsageError
from ..text import printable
from ..views.items import next_item_row
from .models import ItemView

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..journal.base import Journal
    from ..views.items import ItemRow


def parse_timestamp(text: str) -> str:
    """An ISO 8601 time as the journal writes it (UTC, microseconds, Z), so that it
    compares with `recorded_at` as text. A time without an offset is taken as UTC; a
    date alone means its first instant."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # Near the ends of the calendar an offset can carry the time out of it.
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (ValueError, OverflowError):
        raise UsageError(
            f"invalid time {printable(text)!r}: use ISO 8601 between years 1 and 9999, "
            "e.g. 2026-11-26T08:00:00Z"
        ) from None


def item_at(
    journal: Journal,
    item_id: str,
    *,
    position: int | None = None,
    as_of: str | None = None,
    include_deleted: bool = False,
) -> ItemView:
    """The item as it was after the last of its events at or before `position` (or
    recorded at or before `as_of`, a parse_timestamp value)."""
    item_id = validate_item_id(item_id)
    if position is not None and position < 0:
        raise UsageError(f"invalid position {position}: it must be 0 or more")
    row: ItemRow | None = None
    for e in journal.read_stream(item_id):
        if (position is not None and e.position > position) or (
            as_of is not None and e.recorded_at > as_of
        ):
            break
        row = next_item_row(row, e, decode(e.stream_id, e.event_type, e.schema_version, e.data))
    if row is None:
        raise ItemNotFound(item_id)
    _, description, version, deleted, created_at, updated_at, last_position = row
    if deleted and not include_deleted:
        raise ItemNotFound(item_id, deleted=True)
    # None means what the projection's upsert makes of it: no description, created now.
    return ItemView(
        item_id,
        description if description is not None else "",
        version,
        bool(deleted),
        created_at if created_at is not None else updated_at,
        updated_at,
        last_position,
    )
