"""Applying a batch of journal events to the views, each from its own checkpoint."""

from __future__ import annotations

from ..domain.codec import decode

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from ..journal.records import RecordedEvent
    from ..views.base import Change, View


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
