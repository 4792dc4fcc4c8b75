"""The peer: the same jobs with the `eventsourcing` library and its SQLite persistence.

Configured as its documentation shows (PERSISTENCE_MODULE=eventsourcing.sqlite,
SQLITE_DBNAME=file), nothing else changed: it puts the file in WAL mode itself and
leaves `synchronous` at SQLite's default, which each task reports as it finds it.
The library is optional (the `bench` extra): without it, its cells say so.

Its projection runner (eventsourcing.projection.ProjectionRunner) needs a recorder with
`subscribe()`, which the SQLite recorder does not have, so the projection row pulls
pages with `select_notifications` and writes its view with the library's
SQLiteTrackingRecorder, rows and tracking position in one transaction, as the
library's own `insert_tracking` does.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from .fixtures import EVENTS_PER_ITEM, description, item_count, item_name
from .tasks import TaskResult, TaskSpec

NOT_INSTALLED = "peer not installed"

PAGE = 1000
"""Notifications per select (and per projection transaction), as in the baselines."""

STARTUP_SCRIPT = """\
import sys
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

class Item(Aggregate):
    @event("Created")
    def __init__(self, name: str, description: str = "") -> None:
        self.name = name
        self.description = description

app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                       "SQLITE_DBNAME": sys.argv[1]})
item = Item(sys.argv[2])
app.save(item)
print(f"Item created: {item.name}")
"""
"""One save in a fresh process: the peer of `cqrs item create ID`. Argv: file, name."""


def missing() -> str | None:
    """None if eventsourcing imports; else the text for the peer's cells."""
    try:
        import eventsourcing  # noqa: F401
    except ImportError:
        return NOT_INSTALLED
    return None


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("eventsourcing")
    except PackageNotFoundError:
        return "not installed"


def _application(path: str) -> Any:
    from eventsourcing.application import Application

    return Application[UUID](
        env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    )


def _items(events: int) -> list[Any]:
    """The plan's items as new aggregates with their pending events (not saved)."""
    from .peer_model import Item

    items = [Item(item_name(n), description(n, 1)) for n in range(item_count(events))]
    for version in range(2, EVENTS_PER_ITEM + 1):
        for n, item in enumerate(items):
            item.update(description(n, version))
    return items


def save_per_call(spec: TaskSpec) -> TaskResult:
    """`app.save(Item(name))` for `events` distinct new items: one event, one
    transaction each."""
    from .peer_model import Item, synchronous

    app = _application(spec.path("peer-append"))
    names = [item_name(n) for n in range(spec.events)]
    save = app.save
    save(Item("warm-up"))
    start = time.perf_counter()
    for name in names:
        save(Item(name))
    seconds = time.perf_counter() - start
    info = {"synchronous": synchronous(app.recorder.datastore)}
    app.close()
    return TaskResult(len(names), seconds, info)


def save_batch(spec: TaskSpec) -> TaskResult:
    """One `app.save(*items)` of the whole plan: all its events in one transaction.
    The aggregates and their pending events are made before the clock starts."""
    app = _application(spec.path("peer-batch"))
    items = _items(spec.events)
    count = sum(len(item.pending_events) for item in items)
    start = time.perf_counter()
    app.save(*items)
    seconds = time.perf_counter() - start
    app.close()
    return TaskResult(count, seconds)


def build_store(spec: TaskSpec) -> TaskResult:
    """The plan in an eventsourcing database, saved a thousand items at a time: the
    source of the peer's read and projection rows."""
    path = spec.path("peer-store")
    app = _application(path)
    items = _items(spec.events)
    start = time.perf_counter()
    for first in range(0, len(items), PAGE):
        app.save(*items[first : first + PAGE])
    seconds = time.perf_counter() - start
    count = app.recorder.max_notification_id() or 0
    app.close()
    return TaskResult(count, seconds, {"path": path})


def read_notifications(spec: TaskSpec) -> TaskResult:
    """Every event in order through `recorder.select_notifications`, pages of 1,000
    (as stored: not decoded into domain events)."""
    app = _application(spec.source)
    select = app.recorder.select_notifications
    count = 0
    start = time.perf_counter()
    page = select(1, PAGE)
    while page:
        count += len(page)
        page = select(page[-1].id + 1, PAGE)
    seconds = time.perf_counter() - start
    app.close()
    return TaskResult(count, seconds)


def project(spec: TaskSpec) -> TaskResult:
    """The peer's projection: pages of 1,000 notifications, decoded into domain events
    by the application's mapper, written with their tracking position in one
    transaction per page."""
    from eventsourcing.persistence import Tracking
    from eventsourcing.sqlite import SQLiteDatastore

    from .peer_model import ItemsView, synchronous

    app = _application(spec.source)
    view = ItemsView(SQLiteDatastore(spec.path("peer-projection")))
    view.create_table()
    select = app.recorder.select_notifications
    to_event = app.mapper.to_domain_event
    count = 0
    start = time.perf_counter()
    while True:
        last = view.max_tracking_id(app.name) or 0
        page = select(last + 1, PAGE)
        if not page:
            break
        view.apply([(n.id, to_event(n)) for n in page], Tracking(app.name, page[-1].id))
        count += len(page)
    seconds = time.perf_counter() - start
    info = {"synchronous": synchronous(view.datastore)}
    view.datastore.close()
    app.close()
    return TaskResult(count, seconds, info)
