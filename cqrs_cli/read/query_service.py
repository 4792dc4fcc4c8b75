"""QueryService: the read side. Answers from the projection file only.

The journal is opened (read-only) for one thing: its head and id, to tell how far
behind the projection is and whether the projection belongs to it. Reads never create
or change the projection; `sync()` is the way to bring it up to date.

Session consistency: in a process whose CommandService wrote to this projection (with
its catch-up on), a query first waits, up to `session_timeout` seconds, for the
projection to reach the last position this process wrote (sync/session.py): a program
reads its own writes; other processes' writes show up eventually.
"""

from __future__ import annotations

import sqlite3
import time
import unicodedata

from ..domain.item import ItemNotFound
from ..domain.validation import validate_item_id, validate_text
from ..errors import StaleReadError, StorageError, UnavailableError, UsageError
from ..paths import StorePaths
from ..sqlitefile import translate
from .models import HistoryEntry, ItemView, Status, ViewStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from collections.abc import Iterator

    from ..journal.base import Journal
    from ..projection.store import ProjectionStore
    from ..sync.catchup_state import CatchUpStatus
    from ..sync.runner import SyncReport

_ITEM_COLUMNS = "item_id, description, version, deleted, created_at, updated_at, position"
_HISTORY_COLUMNS = "position, item_id, version, event_type, description, recorded_at"
_POLL_SECONDS = 0.05
_SESSION_POLL_SECONDS = 0.005
SESSION_TIMEOUT = 5.0


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`, in SQLite's
    BINARY order (UTF-8 bytes, which sort as code points); None if there is none."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000  # surrogates cannot be stored: skip to the next real character
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def fts_query(text: str) -> str:
    """User text as an FTS5 query that matches items with a word starting with each
    word of `text` (a search box's prefix matching: `blu wid` finds "Blue widget"),
    with no syntax of its own: each word becomes a quoted string, so `AND`, `*`, `"`
    or `:` are just text."""
    words = text.split()
    if not words:
        raise UsageError("nothing to search for: give one or more words")
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words)


class QueryService:
    """Reads items from the projection.

    >>> queries = QueryService("/tmp/store")        # doctest: +SKIP
    >>> queries.sync()                              # doctest: +SKIP
    >>> print(queries.get_item("Item1"))            # doctest: +SKIP
    Item1: Updated Description
    """

    def __init__(
        self,
        store: StorePaths | str | os.PathLike[str] | None = None,
        *,
        journal: Journal | None = None,
        session_timeout: float = SESSION_TIMEOUT,
    ) -> None:
        self.paths = StorePaths.coerce(store)
        self.session_timeout = session_timeout
        """How long a query waits for this process's own writes (0: not at all)."""
        self._projection: ProjectionStore | None = None
        self._seen = 0  # the position of this process's writes already waited for
        # A journal object given by the caller (an in-memory one, say) stays the
        # caller's: it is used instead of the locator in `paths` and never closed here.
        self._given = journal
        self._journal: Journal | None = journal

    def __enter__(self) -> QueryService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._projection is not None:
            self._projection.close()
        if self._journal is not None and self._journal is not self._given:
            self._journal.close()
        self._projection = None
        self._journal = self._given

    # Consistency

    def sync(self, *, rebuild: bool = False) -> SyncReport:
        """Bring the projection up to date with the journal (read-your-writes)."""
        from ..sync.runner import sync_projection

        return sync_projection(self.paths, rebuild=rebuild, journal=self._given)

    def has_journal(self) -> bool:
        return self._open_journal() is not None

    def journal_head(self) -> int:
        journal = self._open_journal()
        return journal.head() if journal is not None else 0

    def checkpoint(self) -> int:
        """The journal position the projection has reached (0 without a projection)."""
        projection = self._open_projection()
        return projection.checkpoint() if projection is not None else 0

    def wait_for(self, position: int, timeout: float) -> None:
        """Return once the projection has reached `position`; StaleReadError if it has
        not within `timeout` seconds (something else, e.g. `cqrs sync --follow`, syncs)."""
        deadline = time.monotonic() + timeout
        while True:
            reached = self.checkpoint()
            if reached >= position:
                return
            if time.monotonic() >= deadline:
                raise StaleReadError(
                    f"the projection reached position {reached}, not {position}, within "
                    f"{timeout:g} s: run `cqrs sync` (or pass --sync)"
                )
            time.sleep(_POLL_SECONDS)

    def _await_own_writes(self) -> None:
        """Wait, within `session_timeout`, until the projection holds the writes this
        process made to it; past that, answer from what it has (and say so in a notice)."""
        import sys

        # Loaded only by a write with its catch-up on: a process that never made one
        # (every `cqrs` read) has nothing to wait for, and does not pay for threading.
        session = sys.modules.get("cqrs_cli.sync.session")
        if session is None or self.session_timeout <= 0:
            return
        target: int = session.own_position(self.paths.projection)
        if target <= self._seen:
            return
        deadline = time.monotonic() + self.session_timeout
        while True:
            reached = self.checkpoint()
            if reached >= target:
                self._seen = target
                return
            if session.gave_up(self.paths.projection, target) or time.monotonic() >= deadline:
                from ..notices import notice

                notice(
                    f"cqrs: note: the projection reached position {reached}, not {target} "
                    "(this process's last write), in time; answering from it"
                )
                self._seen = target  # said once; the next write waits again
                return
            time.sleep(_SESSION_POLL_SECONDS)

    # Queries

    def get_item(self, item_id: str, *, include_deleted: bool = False) -> ItemView:
        item_id = validate_item_id(item_id)
        rows = self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE item_id = ?", (item_id,))
        if not rows:
            raise ItemNotFound(item_id)
        item = ItemView(*rows[0])  # type: ignore[arg-type]
        if item.deleted and not include_deleted:
            raise ItemNotFound(item_id, deleted=True)
        return item

    def list_all_items(self) -> list[str]:
        """The ids of all live items, in id order (the seed's `list_all_items`)."""
        return list(self.item_ids())

    def item_ids(
        self,
        *,
        limit: int | None = None,
        prefix: str | None = None,
        after: str | None = None,
        include_deleted: bool = False,
    ) -> Iterator[str]:
        """Ids in id order, read one by one. The arguments and the projection are
        checked at the call (a UsageError, StaleReadError or StorageError is raised
        then, not while iterating)."""
        rows = self._list("item_id", limit, prefix, after, include_deleted)
        return (str(row[0]) for row in rows)

    def list_items(
        self,
        *,
        limit: int | None = None,
        prefix: str | None = None,
        after: str | None = None,
        include_deleted: bool = False,
    ) -> Iterator[ItemView]:
        """Items in id order, read one by one. Keyset pagination: pass the last id seen
        as `after`. Checked at the call, as `item_ids`."""
        rows = self._list(_ITEM_COLUMNS, limit, prefix, after, include_deleted)
        return (ItemView(*row) for row in rows)

    def _list(
        self,
        columns: str,
        limit: int | None,
        prefix: str | None,
        after: str | None,
        include_deleted: bool,
    ) -> Iterator[tuple]:  # type: ignore[type-arg]
        if limit is not None and not 0 <= limit < 2**63:
            raise UsageError(f"invalid limit {limit}: it must be 0 or more")
        where = [] if include_deleted else ["deleted = 0"]
        params: list[object] = []
        # Ids are stored in NFC: compare in the same form (a prefix may end anywhere,
        # so it is normalised, not validated as an id).
        if prefix:
            prefix = unicodedata.normalize("NFC", validate_text("prefix", prefix))
        if after is not None:
            after = unicodedata.normalize("NFC", validate_text("--after id", after))
        if prefix:
            where.append("item_id >= ?")
            params.append(prefix)
            upper = prefix_upper_bound(prefix)
            if upper is not None:
                where.append("item_id < ?")
                params.append(upper)
        if after is not None:
            where.append("item_id > ?")
            params.append(after)
        sql = f"SELECT {columns} FROM items"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY item_id LIMIT ?"
        params.append(-1 if limit is None else limit)
        # Every check that can fail (the arguments, the files, the query itself) is done
        # here, at the call, before the caller has printed anything; only reading the
        # rows is left to the iterator.
        projection = self._require_projection()
        if projection is None:
            return iter(())
        try:
            rows = projection.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise translate(exc, projection.path) from None
        return self._rows(rows, projection)

    @staticmethod
    def _rows(
        rows: sqlite3.Cursor,
        projection: ProjectionStore,
    ) -> Iterator[tuple]:  # type: ignore[type-arg]
        try:
            # A plain loop, not `yield from`: closing this generator after the service
            # closed its connection must not close the cursor (which then raises).
            for row in rows:  # noqa: UP028
                yield row
        except sqlite3.Error as exc:
            raise translate(exc, projection.path) from None

    def history(self, item_id: str) -> list[HistoryEntry]:
        """Every change of the item, oldest first; ItemNotFound if it has none. The
        whole history in memory: `iter_history` pages and streams it."""
        return list(self.iter_history(item_id))

    def iter_history(
        self,
        item_id: str,
        *,
        limit: int | None = None,
        after: int | None = None,
        before: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[HistoryEntry]:
        """The item's changes with a version greater than `after` and less than
        `before`, oldest first (newest first with `newest_first`), at most `limit` of
        them, read one by one (keyset pagination on the (item_id, version) index).

        Paging forward: pass the last version seen as `after`; backward, newest first:
        the last version seen as `before`. ItemNotFound, at once, if the item has no
        history at all; a page past either end is empty. Read the iterator before
        the service is closed."""
        item_id = validate_item_id(item_id)
        for name, value in (("limit", limit), ("after", after), ("before", before)):
            if value is not None and not 0 <= value < 2**63:
                raise UsageError(f"invalid {name} {value}: it must be 0 or more")
        where = "item_id = ?"
        params: list[object] = [item_id]
        if after is not None:
            where += " AND version > ?"
            params.append(after)
        if before is not None:
            where += " AND version < ?"
            params.append(before)
        params.append(-1 if limit is None else limit)
        order = " DESC" if newest_first else ""
        projection = self._require_projection()
        if projection is None:
            raise ItemNotFound(item_id)
        try:
            rows = projection.conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM item_history WHERE {where} "
                f"ORDER BY version{order} LIMIT ?",
                params,
            )
            first = rows.fetchone()
            # An empty page is an item with no history at all, or a page past its end.
            if first is None and not projection.query(
                "SELECT 1 FROM item_history WHERE item_id = ? LIMIT 1", (item_id,)
            ):
                raise ItemNotFound(item_id)
        except sqlite3.Error as exc:
            raise translate(exc, projection.path) from None
        return self._history_rows(first, rows, projection)

    @staticmethod
    def _history_rows(
        first: tuple | None,  # type: ignore[type-arg]
        rows: sqlite3.Cursor,
        projection: ProjectionStore,
    ) -> Iterator[HistoryEntry]:
        if first is None:
            return
        yield HistoryEntry(*first)
        try:
            for row in rows:
                yield HistoryEntry(*row)
        except sqlite3.Error as exc:
            raise translate(exc, projection.path) from None

    def search(self, text: str, *, limit: int = 20, fts: bool = False) -> list[ItemView]:
        """Live items whose id or description contains every word of `text`, best
        first. With `fts`, `text` is an FTS5 query (AND, OR, NOT, "phrases", prefix*)."""
        if not 0 <= limit < 2**63:
            raise UsageError(f"invalid limit {limit}: it must be 0 or more")
        text = validate_text("search text", text)
        query = text if fts else fts_query(text)
        projection = self._require_projection()
        if projection is None:
            return []
        try:
            rows = projection.conn.execute(
                f"SELECT {', '.join('i.' + c for c in _ITEM_COLUMNS.split(', '))} "
                "FROM item_search JOIN items AS i ON i.item_key = item_search.rowid "
                "WHERE item_search MATCH ? ORDER BY item_search.rank LIMIT ?",
                (query, limit),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            error = translate(exc, projection.path)
            if fts and type(error) is StorageError and "corrupt" not in str(error):
                # Not busy, not a damaged file: the query itself (a syntax error, an
                # unterminated string, an unknown column) is what SQLite refused.
                raise UsageError(f"invalid full-text query {text!r}: {exc}") from None
            raise error from None
        except sqlite3.Error as exc:
            raise translate(exc, projection.path) from None
        return [ItemView(*row) for row in rows]

    def status(self) -> Status:
        journal = self._open_journal()
        projection = self._open_projection()
        head = journal.head() if journal is not None else 0
        views: list[ViewStatus] = []
        built_from = last_sync = None
        if projection is not None:
            from ..views.registry import views as registered_views

            built_from = projection.meta("journal_id")
            last_sync = projection.meta("last_sync_at")
            stored = {view.view: view for view in projection.views()}
            # Every view this cqrs builds, by name; one the projection does not have yet
            # (the next sync builds it) shows nothing applied.
            for view in sorted(registered_views(), key=lambda view: view.name):
                state = stored.get(view.name)
                version = state.version if state is not None else view.version
                checkpoint = state.checkpoint if state is not None else 0
                lag = journal.count_after(checkpoint) if journal is not None else 0
                updated_at = state.updated_at if state is not None else None
                views.append(ViewStatus(view.name, version, checkpoint, lag, updated_at))
        from ..journal.redaction import redacted

        return Status(
            redacted(self.paths.journal),  # a server's locator without its password
            self.paths.projection,
            journal.journal_id if journal is not None else None,
            head,
            projection is not None,
            built_from,
            last_sync,
            tuple(views),
            _catch_up_status(self.paths.projection),
        )

    # Files

    def _open_journal(self) -> Journal | None:
        if self._journal is None:
            from ..journal.locator import find_journal

            self._journal = find_journal(self.paths.journal)
        return self._journal

    def _open_projection(self) -> ProjectionStore | None:
        if self._projection is None:
            from ..projection.store import ProjectionStore

            self._projection = ProjectionStore.open(self.paths.projection)
        return self._projection

    def _require_projection(self) -> ProjectionStore | None:
        """The projection, checked to belong to the journal; None for a store where
        nothing was ever written (every query is then empty)."""
        self._await_own_writes()
        projection = self._open_projection()
        try:
            journal = self._open_journal()
        except UnavailableError:
            if projection is None:
                raise
            # The journal's server is down: a reader host answers from its projection
            # (which journal it was built from is checked once the server is back).
            return projection
        if projection is None:
            if journal is not None and journal.head() > 0:
                raise StaleReadError(
                    f"{self.paths.projection}: no projection yet: run `cqrs sync` (or pass --sync)"
                )
            return None
        built_from = projection.meta("journal_id")
        if journal is not None and built_from is not None and built_from != journal.journal_id:
            raise StorageError(
                f"{projection.path}: projection of another journal ({built_from}), not of "
                f"{journal.locator}: run `cqrs sync` to rebuild it"
            )
        return projection

    def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        projection = self._require_projection()
        if projection is None:
            return []
        return projection.query(sql, params)


def _catch_up_status(projection: str) -> CatchUpStatus:
    from ..sync.catchup_state import status

    return status(projection)
