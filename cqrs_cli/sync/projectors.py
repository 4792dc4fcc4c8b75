"""Applying a batch of journal events to the projection's views.

Each view is caught up from its own checkpoint. `items` keeps only the last state of
each item a batch touches (one upsert per item, not per event); `item_history` gets
one row per event; `item_search` follows `items` through triggers.
"""

from __future__ import annotations

from ..domain.codec import decode
from ..domain.item import ItemCreated, ItemDeleted

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3

    from ..journal.records import RecordedEvent

# Numbered parameters: NULL description or created_at means "keep the stored one"
# (a delete keeps the last description; an update keeps the creation time).
_UPSERT_ITEM = """
INSERT INTO items (item_id, description, version, deleted, created_at, updated_at, position)
VALUES (?1, COALESCE(?2, ''), ?3, ?4, COALESCE(?5, ?6), ?6, ?7)
ON CONFLICT (item_id) DO UPDATE SET
    description = COALESCE(?2, description),
    version     = ?3,
    deleted     = ?4,
    created_at  = COALESCE(?5, created_at),
    updated_at  = ?6,
    position    = ?7
"""

_INSERT_HISTORY = """
INSERT INTO item_history (position, item_id, version, event_type, description, recorded_at)
VALUES (?, ?, ?, ?, ?, ?)
"""

ItemRow = tuple[str, "str | None", int, int, "str | None", str, int]


def apply_batch(
    conn: sqlite3.Connection, events: list[RecordedEvent], checkpoints: dict[str, int]
) -> None:
    """Apply `events` (in position order) to every view whose checkpoint is below them,
    inside the caller's transaction; the caller moves the checkpoints."""
    items_from = checkpoints.get("items", 0)
    history_from = checkpoints.get("item_history", 0)
    latest: dict[str, ItemRow] = {}
    history: list[tuple[int, str, int, str, str | None, str]] = []
    for recorded in events:
        event = decode(
            recorded.stream_id, recorded.event_type, recorded.schema_version, recorded.data
        )
        item_id = recorded.stream_id
        at = recorded.recorded_at
        description = None if isinstance(event, ItemDeleted) else event.description
        position = recorded.position
        if position > history_from:
            history.append(
                (position, item_id, recorded.stream_version, recorded.event_type, description, at)
            )
        if position <= items_from:
            continue
        before = latest.get(item_id)
        if isinstance(event, ItemCreated):
            latest[item_id] = (item_id, description, recorded.stream_version, 0, at, at, position)
        else:
            kept_description = description
            if kept_description is None and before is not None:
                kept_description = before[1]
            created_at = before[4] if before is not None else None
            deleted = 1 if isinstance(event, ItemDeleted) else 0
            latest[item_id] = (
                item_id,
                kept_description,
                recorded.stream_version,
                deleted,
                created_at,
                at,
                position,
            )
    if latest:
        conn.executemany(_UPSERT_ITEM, latest.values())
    if history:
        conn.executemany(_INSERT_HISTORY, history)
