"""Filling every view from scratch, inside the caller's (rebuild) transaction.

Views are created and filled in registry order. A view with a bulk `build` is built in
SQL when the journal's file is attached and nothing needs upcasting; every other view is
replayed: the journal read in batches through `journal.read_all`, each batch given to
the view's `apply`. Views waiting for replay are replayed together, in one pass, before
a view that depends on one of them is built (and at the end).
"""

from __future__ import annotations

from ..journal.chain import GENESIS
from . import bulk
from .apply import apply_batch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from ..journal.base import Journal
    from ..views.base import View

    Progress = Callable[[int, int], None]


class Builder:
    """Builds `views` (dropped already) up to journal position `head`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        journal: Journal,
        head: int,
        *,
        attached: bool,
        batch_size: int,
        reached: Callable[[str], None],
        progress: Progress | None,
    ) -> None:
        self.conn = conn
        self.journal = journal
        self.head = head
        # Bulk SQL reads the attached journal's rows as they are stored: only when no
        # event needs upcasting on the way.
        self.in_sql = attached and bulk.current(conn, head)
        self.batch_size = batch_size
        self.reached = reached
        self.progress = progress
        self.replayed: tuple[int, str] = (0, GENESIS)
        """(events, hash of the last one) of the last replay."""

    def build(self, views: Sequence[View]) -> tuple[int, str]:
        """Create and fill every view; (events applied, hash of the event at `head`)."""
        waiting: list[View] = []
        for view in views:
            if self.in_sql and view.build is not None:
                if any(other.name in view.depends_on for other in waiting):
                    self._replay(waiting)
                    waiting = []
                view.create(self.conn)
                if self._build_in_sql(view):
                    continue
            else:
                view.create(self.conn)
            waiting.append(view)
        if waiting:
            self._replay(waiting)
        if self.in_sql:
            return bulk.count_and_hash(self.conn, self.head)
        return self.replayed

    def _build_in_sql(self, view: View) -> bool:
        """The view's bulk build, undone if it cannot (the view is then replayed)."""
        assert view.build is not None
        self.conn.execute("SAVEPOINT view_build")
        built = view.build(self.conn, self.head)
        if not built:
            self.conn.execute("ROLLBACK TO view_build")
        self.conn.execute("RELEASE view_build")
        self.reached("rebuild-mid")
        return built

    def _replay(self, views: Sequence[View]) -> None:
        """The journal's events up to `head`, batch by batch, through the views' apply."""
        applied = end = 0
        last_hash = GENESIS
        nothing = {view.name: 0 for view in views}
        while end < self.head:
            events = self.journal.read_all(after=end, limit=self.batch_size)
            events = [event for event in events if event.position <= self.head]
            if not events:
                break
            apply_batch(self.conn, views, events, nothing)
            end, last_hash = events[-1].position, events[-1].hash
            applied += len(events)
            self.reached("rebuild-mid")
            if self.progress is not None:
                self.progress(applied, max(self.head, applied))
        self.replayed = (applied, last_hash)
