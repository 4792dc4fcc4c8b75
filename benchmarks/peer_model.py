"""The peer's domain and view classes. Module level, because eventsourcing stores an
event's class as a topic (module:qualname) and resolves it again when reading. Imported
only by worker processes that run a peer task: it needs eventsourcing."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteTrackingRecorder


class Item(Aggregate):
    """An item, as the eventsourcing docs model an aggregate: created, then updated."""

    @staticmethod
    def create_id(name: str, description: str = "") -> UUID:
        return uuid5(NAMESPACE_URL, f"/items/{name}")

    @event("Created")
    def __init__(self, name: str, description: str = "") -> None:
        self.name = name
        self.description = description

    @event("Updated")
    def update(self, description: str) -> None:
        self.description = description


class ItemsView(SQLiteTrackingRecorder):
    """The baseline projection's items and indexed history, tracked by the library:
    rows and tracking position written in one transaction."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS items (item_id TEXT PRIMARY KEY, "
            "description TEXT NOT NULL, version INTEGER NOT NULL, "
            "deleted INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS item_history (position INTEGER PRIMARY KEY, "
            "item_id TEXT NOT NULL, version INTEGER NOT NULL, event_type TEXT NOT NULL, "
            "description TEXT, recorded_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS item_history_by_item ON item_history (item_id, version)",
        ]

    def apply(self, events: list[tuple[int, Any]], tracking: Tracking) -> None:
        """Project one page of (notification id, domain event), and track it."""
        with self.datastore.transaction(commit=True) as cursor:
            for position, domain_event in events:
                item_id = domain_event.originator_id.hex
                version = domain_event.originator_version
                text = domain_event.description
                stamp = domain_event.timestamp.isoformat()
                kind = type(domain_event).__name__
                if kind == "Created":
                    cursor.execute(
                        "INSERT INTO items (item_id, description, version, created_at, "
                        "updated_at) VALUES (?, ?, ?, ?, ?)",
                        (item_id, text, version, stamp, stamp),
                    )
                else:
                    cursor.execute(
                        "UPDATE items SET description = ?, version = ?, updated_at = ? "
                        "WHERE item_id = ?",
                        (text, version, stamp, item_id),
                    )
                cursor.execute(
                    "INSERT INTO item_history VALUES (?, ?, ?, ?, ?, ?)",
                    (position, item_id, version, kind, text, stamp),
                )
            self._insert_tracking(cursor, tracking)


def synchronous(datastore: Any) -> str:
    """The `synchronous` setting of a datastore's connections, as SQLite reports it."""
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        value = cursor.fetchone()[0]
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(value, str(value))
