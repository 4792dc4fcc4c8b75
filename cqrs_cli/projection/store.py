"""The projection file: opening it, and its bookkeeping (each view's version and
checkpoint; the journal id, last sync time and checkpoint hash in projection_meta).

The bookkeeping writes run inside the caller's transaction, with the rows they account
for: a checkpoint never moves apart from its view's rows (docs/architecture.md, Sync).
"""

from __future__ import annotations

import sqlite3

from ..clock import utc_now
from ..errors import StorageError
from ..sqlitefile import (
    check_existing,
    connect,
    create_atomically,
    release,
    retain,
    sync_lock_timeout,
    translate,
    unwritable_reason,
)
from .schema import BOOKKEEPING, SPEC

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    CreateViews = Callable[[sqlite3.Connection], Sequence[tuple[str, int]]]
    """Creates every view's tables in a new projection; their (name, version)s."""


def statements(script: str) -> Iterator[str]:
    """The SQL statements of `script`, one at a time. `executescript` would commit any
    open transaction, and a rebuild must stay inside one."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending.strip()
            pending = ""
    if pending.strip():
        yield pending.strip()


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run every statement of `script` (a constant) inside the caller's transaction."""
    for statement in statements(script):
        conn.execute(statement)


def _initialise(conn: sqlite3.Connection, create_views: CreateViews) -> None:
    # A new file gets every view's tables at once (empty, checkpoint 0): a reader that
    # opens it before the first sync commits finds an empty projection, not a broken one.
    conn.execute("BEGIN")
    run_script(conn, BOOKKEEPING)
    _reset_views(conn, create_views(conn))
    conn.execute("COMMIT")


def _reset_views(conn: sqlite3.Connection, versions: Sequence[tuple[str, int]]) -> None:
    """Exactly these views, at these versions, with nothing applied yet."""
    conn.executemany(
        "INSERT INTO projection_views (view, version, checkpoint) VALUES (?, ?, 0) "
        "ON CONFLICT (view) DO UPDATE SET version = excluded.version, checkpoint = 0",
        versions,
    )
    kept = {name for name, _ in versions}
    gone = [(view,) for (view,) in conn.execute("SELECT view FROM projection_views")]
    conn.executemany(
        "DELETE FROM projection_views WHERE view = ?", [row for row in gone if row[0] not in kept]
    )


class ViewState:
    __slots__ = ("checkpoint", "updated_at", "version", "view")

    def __init__(self, view: str, version: int, checkpoint: int, updated_at: str | None) -> None:
        self.view = view
        self.version = version
        self.checkpoint = checkpoint
        self.updated_at = updated_at


class ProjectionStore:
    """One connection to the projection file."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self._held = retain(path)  # see sqlitefile._HELD

    @classmethod
    def open(
        cls, path: str, *, create: CreateViews | None = None, readonly: bool = True
    ) -> ProjectionStore | None:
        """The projection at `path`; None if there is none and no `create` is given
        (sync gives it: the views are the sync's to know). Reads open it read-only: a
        read never creates or changes the file."""
        if not check_existing(path, SPEC):
            if create is None:
                return None
            create_atomically(path, SPEC, lambda conn: _initialise(conn, create))
        elif not readonly:
            # Said before any work, in one line: SQLite would only fail at the first
            # statement, and on a read-only medium with "unable to open database file".
            reason = unwritable_reason(path)
            if reason is not None:
                raise StorageError(
                    f"{path}: read-only ({reason}): cqrs sync cannot bring the projection "
                    "up to date here; reads answer from it as it is"
                )
        conn = connect(path, readonly=readonly)
        try:
            if not readonly:
                cls._tune_for_sync(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc, path) from None
        return cls(conn, path)

    @staticmethod
    def _tune_for_sync(conn: sqlite3.Connection) -> None:
        # The projection can always be rebuilt from the journal, so a commit lost to a
        # power cut costs a re-sync, not data: no fsync per batch.
        conn.execute("PRAGMA synchronous = NORMAL")
        # After a rebuild the WAL may have grown to the projection's size: give the
        # space back once it is checkpointed.
        conn.execute("PRAGMA journal_size_limit = 67108864")
        # Only syncs write here; one that is rebuilding holds the lock for as long as
        # that takes, and the others should wait for it rather than fail.
        conn.execute(f"PRAGMA busy_timeout = {int(sync_lock_timeout() * 1000)}")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None

    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM projection_meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def views(self) -> list[ViewState]:
        rows = self.query(
            "SELECT view, version, checkpoint, updated_at FROM projection_views ORDER BY view"
        )
        return [ViewState(*row) for row in rows]  # type: ignore[arg-type]

    def checkpoint(self) -> int:
        """The position every view has reached: reads are as fresh as this."""
        rows = self.query("SELECT COALESCE(MIN(checkpoint), 0) FROM projection_views")
        value = rows[0][0]
        if not isinstance(value, int):
            raise StorageError(f"{self.path}: damaged projection bookkeeping")
        return value

    def checkpoint_and_hash(self) -> tuple[int, str | None]:
        """The checkpoint and the hash of the journal event there, read together."""
        rows = self.query(
            "SELECT (SELECT COALESCE(MIN(checkpoint), 0) FROM projection_views), "
            "(SELECT value FROM projection_meta WHERE key = 'checkpoint_hash')"
        )
        checkpoint, digest = rows[0]
        if not isinstance(checkpoint, int):
            raise StorageError(f"{self.path}: damaged projection bookkeeping")
        return checkpoint, None if digest is None else str(digest)

    # Bookkeeping inside a sync's write transaction (BEGIN IMMEDIATE, on `conn`)

    def checkpoints(self, names: Sequence[str]) -> dict[str, int]:
        """The checkpoint of each of `names` that the projection has, read inside the
        caller's transaction: another sync may have moved them since it last looked."""
        stored = dict(self.conn.execute("SELECT view, checkpoint FROM projection_views"))
        return {name: stored[name] for name in names if name in stored}

    def reset_views(self, versions: Sequence[tuple[str, int]]) -> None:
        """For a rebuild: exactly these views, at these versions, nothing applied yet
        (the bookkeeping of views no longer built goes)."""
        _reset_views(self.conn, versions)

    def advance(self, views: Iterable[str], position: int, last_hash: str, journal_id: str) -> None:
        """`views` were applied up to `position`, whose event has hash `last_hash`:
        move their checkpoints there and note the journal and the hash, by which the
        next sync recognises the journal."""
        now = utc_now()
        self.conn.executemany(
            "UPDATE projection_views SET checkpoint = ?, updated_at = ? "
            "WHERE view = ? AND checkpoint < ?",
            [(position, now, view, position) for view in views],
        )
        self.conn.executemany(
            "INSERT INTO projection_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [("journal_id", journal_id), ("last_sync_at", now), ("checkpoint_hash", last_hash)],
        )

    def close(self) -> None:
        self.conn.close()
        release(self._held)
        self._held = (0, 0)
