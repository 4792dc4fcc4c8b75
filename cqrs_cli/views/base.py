"""What a view is: everything sync needs to create one, fill it and keep it current.

A view is one module of this package that builds a `View`: its name, its version (bump
it whenever its tables or the way events map onto them change: the next sync rebuilds
the projection, saying why), how to create and drop its tables, how to apply a batch of
events incrementally, and optionally how to build itself in bulk and how to apply a
range of events in SQL (a large catch-up). Sync keeps one checkpoint per view and moves
it only in the transaction that applied the view's rows (docs/architecture.md, Sync).
"""

from __future__ import annotations

from ..record import Record, set_field

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from ..domain.item import Event
    from ..journal.records import RecordedEvent

    Change = tuple[RecordedEvent, Event]
    """A journal event and the domain event it holds (decoded once for every view)."""
    Script = Callable[[sqlite3.Connection], None]
    Apply = Callable[[sqlite3.Connection, Sequence[Change]], None]
    Build = Callable[[sqlite3.Connection, int | None], bool]
    ApplyRange = Callable[[sqlite3.Connection, int, int], bool]

JOURNAL = "journal"
"""The schema name under which a bulk build finds the journal's `events` table: sync
attaches the journal's file read-only under it (sync/bulk.py)."""


class View(Record):
    """One view of the projection.

    - `create(conn)`: its tables, indexes and triggers, ready for `apply`;
    - `drop(conn)`: removes them (a rebuild drops every view, last first);
    - `apply(conn, changes)`: applies events (position order, each above the view's
      checkpoint) inside the caller's transaction; sync moves the checkpoint;
    - `build(conn, journal_head)`, optional: fills the freshly created, empty view in
      SQL, from the views in `depends_on` (filled by then) or from the journal's
      events up to `journal_head`, attached as JOURNAL; `journal_head` is None when
      the journal cannot be read that way (no local file, or events to upcast).
      False if it cannot build (no journal to read, data it does not understand), and
      sync replays the events through `apply` instead. A view with no `build` is
      always filled by replay.
    - `apply_range(conn, after, up_to)`, optional: what `apply` does for the journal's
      events at positions `after` < p <= `up_to`, in SQL, inside the caller's
      transaction: from the journal's events attached as JOURNAL (every one of them at
      its type's current schema version: sync checked) or from the views in
      `depends_on` (applied to the same range by then). Sync uses it for a large
      catch-up when every view has one (sync/apply.py); False if it cannot (data it
      does not understand), and sync applies that batch through `apply` instead. Its
      result must be the same as `apply`'s, row for row.
    - `depends_on`: views this one reads; they come before it in the registry and are
      filled before it is built.
    """

    __slots__ = (
        "name",
        "version",
        "create",
        "drop",
        "apply",
        "build",
        "apply_range",
        "depends_on",
    )
    name: str
    version: int
    create: Script
    drop: Script
    apply: Apply
    build: Build | None
    apply_range: ApplyRange | None
    depends_on: tuple[str, ...]

    def __init__(
        self,
        name: str,
        version: int,
        *,
        create: Script,
        drop: Script,
        apply: Apply,
        build: Build | None = None,
        apply_range: ApplyRange | None = None,
        depends_on: tuple[str, ...] = (),
    ) -> None:
        set_field(self, "name", name)
        set_field(self, "version", version)
        set_field(self, "create", create)
        set_field(self, "drop", drop)
        set_field(self, "apply", apply)
        set_field(self, "build", build)
        set_field(self, "apply_range", apply_range)
        set_field(self, "depends_on", depends_on)
