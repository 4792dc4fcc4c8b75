"""Filling every view from scratch, inside the caller's (rebuild) transaction.

Views are created and filled in registry order. A view with a bulk `build` builds
itself in SQL: from the journal's file, attached, when there is one and nothing needs
upcasting, or from the views it depends on; a view that cannot (or has no `build`) is
replayed: the journal read in batches through `journal.read_all`, each batch given to
the view's `apply`. Views waiting for replay are replayed together, in one pass, before
a view that depends on one of them is built, and at the end.

Progress is told in journal positions, 0 to `head`, each view weighing the same: a
view built in SQL (one long statement) moves it by its share when done, a replay by
its views' shares as its batches go.
"""

from __future__ import annotations

from ..journal.chain import GENESIS
from ..views.registry import views as registered_views
from . import bulk
from .apply import apply_batch

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from ..journal.base import Journal
    from ..views.base import View

    Progress = Callable[[int, int], None]


def create_views(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """Every registered view's tables, empty, for a new projection file; their
    (name, version)s for its bookkeeping."""
    views = registered_views()
    for view in views:
        view.create(conn)
    return [(view.name, view.version) for view in views]


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
        self.attached = attached
        # Bulk SQL reads the attached journal's rows as they are stored: only when no
        # event needs upcasting on the way.
        self.journal_in_sql = head if attached and bulk.current(conn, head) else None
        self.batch_size = batch_size
        self.reached = reached
        self.progress = progress
        self._views = 1  # how many views are being built (build sets it)
        self._built = 0.0  # how many of them are built (replay counts a share of each)

    def _tell(self, built: float) -> None:
        """Progress: `built` views of `self._views` done, in positions of `head`."""
        self._built = built
        if self.progress is not None:
            done = min(round(self.head * built / self._views), self.head)
            self.progress(done, self.head)

    def build(self, views: Sequence[View]) -> tuple[int, str]:
        """Create and fill every view; (events up to `head`, hash of the event there)."""
        self._views = max(len(views), 1)
        self._tell(0)
        waiting: list[View] = []
        for view in views:
            if view.build is not None:
                if any(other.name in view.depends_on for other in waiting):
                    self._replay(waiting)
                    waiting = []
                view.create(self.conn)
                if self._build_in_sql(view):
                    self._tell(self._built + 1)
                    continue
            else:
                view.create(self.conn)
            waiting.append(view)
        if waiting:
            self._replay(waiting)
        if self.attached:
            return bulk.count_and_hash(self.conn, self.head)
        return self._count_and_hash()

    def _build_in_sql(self, view: View) -> bool:
        """The view's bulk build, undone if it cannot (the view is then replayed)."""
        assert view.build is not None
        self.conn.execute("SAVEPOINT view_build")
        built = view.build(self.conn, self.journal_in_sql)
        if not built:
            self.conn.execute("ROLLBACK TO view_build")
        self.conn.execute("RELEASE view_build")
        self.reached("rebuild-mid")
        return built

    def _count_and_hash(self) -> tuple[int, str]:
        """Through the journal's contract: events at or below `head` never change, so the
        difference of the two counts holds while writers append."""
        if self.head == 0:
            return 0, GENESIS
        count = self.journal.count_after(0) - self.journal.count_after(self.head)
        (last,) = self.journal.read_all(after=self.head - 1, limit=1)
        return count, last.hash

    def _replay(self, views: Sequence[View]) -> None:
        """The journal's events up to `head`, batch by batch, through the views' apply."""
        end = 0
        before = self._built
        nothing = {view.name: 0 for view in views}
        while end < self.head:
            events = self.journal.read_all(after=end, limit=self.batch_size)
            events = [event for event in events if event.position <= self.head]
            if not events:
                break
            apply_batch(self.conn, views, events, nothing)
            end = events[-1].position
            self.reached("rebuild-mid")
            self._tell(before + len(views) * min(end / self.head, 1.0))
        self._tell(before + len(views))
