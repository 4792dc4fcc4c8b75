"""Applying the next batch of journal events to the views, each from its own checkpoint.

Two ways, with the same result row for row (tests/test_sync_paths.py):
- in Python, the general way: the batch is read through the journal's contract
  (`Journal.read_all`), decoded once, and each view's `apply` is given the events above
  its checkpoint;
- in SQL, for a large catch-up from a journal kept in a local file, attached to the
  projection's connection (sync/bulk.py): each view's `apply_range` applies the range
  straight from the journal's rows (or from the views before it), set-based, with no
  event crossing into Python. It needs every view to have an `apply_range`, every view
  at the same checkpoint and every event of the range at its type's current schema
  version; a batch that misses any of these, or that a view refuses (data it does not
  understand), goes the Python way.

Either way the caller commits the batch with every view's checkpoint moved to its last
event: every view is current at each committed checkpoint (docs/architecture.md, Sync).
"""

from __future__ import annotations

from ..domain.codec import decode
from . import bulk

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence
    from typing import NamedTuple

    from ..journal.base import Journal
    from ..journal.records import RecordedEvent
    from ..views.base import Change, View

SQL_CATCH_UP_MIN = 1000
"""The smallest catch-up (events behind the journal's head) worth doing in SQL: below
it, attaching the journal's file and the extra statements cost more than decoding the
few events in Python, and a follower applies one event at a time."""


# mypy sees the typed NamedTuple; at run time it is collections.namedtuple, which does
# not import `typing` (start-up: `item get --sync` syncs).
if TYPE_CHECKING:

    class Batch(NamedTuple):
        """A batch applied (not yet committed): how many events, the position and hash
        of its last one, and the views that got any (whose checkpoints move there)."""

        size: int
        position: int
        hash: str
        views: list[str]

else:
    from collections import namedtuple

    Batch = namedtuple("Batch", ("size", "position", "hash", "views"))


def apply_next(
    conn: sqlite3.Connection,
    journal: Journal,
    views: Sequence[View],
    checkpoints: dict[str, int],
    limit: int,
    *,
    in_sql: bool,
    reached: Callable[[str], None],
) -> Batch | None:
    """Apply up to `limit` events after the lowest of `checkpoints` (read inside the
    caller's transaction) to `views`; None if there are none. `in_sql`: the journal is
    attached (sync/bulk.py) and the batch may be applied in SQL. `reached("mid-batch")`
    is called once the batch is known, before anything is applied (the crash tests'
    point)."""
    low = min(checkpoints.values())
    if in_sql and _all_in_sql(views, checkpoints):
        end = bulk.range_end(conn, low, limit)
        if end is None:
            return None
        count, position, digest = end
        if bulk.current(conn, position, after=low):
            reached("mid-batch")
            if _apply_ranges(conn, views, low, position):
                return Batch(count, position, digest, [view.name for view in views])
            reached = _ignore  # reached already; the Python way reports the bad event
    events = journal.read_all(after=low, limit=limit)
    if not events:
        return None
    reached("mid-batch")
    done = apply_batch(conn, views, events, checkpoints)
    return Batch(len(events), events[-1].position, events[-1].hash, done)


def _ignore(point: str) -> None:
    pass


def _all_in_sql(views: Sequence[View], checkpoints: dict[str, int]) -> bool:
    """Every view can apply a range in SQL, and they are all at the same checkpoint (a
    range is applied to all of them at once). Sync moves every view's checkpoint
    together, so views apart are a projection something else left so; the Python way,
    which gives each view the events above its own checkpoint, brings them level."""
    return all(view.apply_range is not None for view in views) and (
        len(set(checkpoints.values())) == 1
    )


def _apply_ranges(conn: sqlite3.Connection, views: Sequence[View], after: int, up_to: int) -> bool:
    """Every view's `apply_range`, in registry order, or none of them: False (nothing
    applied) if one could not."""
    conn.execute("SAVEPOINT apply_range")
    for view in views:
        assert view.apply_range is not None
        if not view.apply_range(conn, after, up_to):
            conn.execute("ROLLBACK TO apply_range")
            conn.execute("RELEASE apply_range")
            return False
    conn.execute("RELEASE apply_range")
    return True


def apply_batch(
    conn: sqlite3.Connection,
    views: Sequence[View],
    events: Sequence[RecordedEvent],
    checkpoints: dict[str, int],
) -> list[str]:
    """Give each view the events of `events` (in position order) above its checkpoint,
    inside the caller's transaction; the names of the views that got any, whose
    checkpoints the caller moves to the last event's position."""
    if not events:
        return []
    # Decoded once for every view (decoding is most of the Python work of a batch).
    changes: list[Change] = [
        (e, decode(e.stream_id, e.event_type, e.schema_version, e.data)) for e in events
    ]
    first, last = events[0].position, events[-1].position
    applied = []
    for view in views:
        since = checkpoints[view.name]
        if since >= last:
            continue  # this view has them all already (another sync got here first)
        if since < first:
            view.apply(conn, changes)
        else:
            view.apply(conn, [change for change in changes if change[0].position > since])
        applied.append(view.name)
    return applied
