"""The event journal on one SQLite file.

Every append is BEGIN IMMEDIATE -> idempotency check -> read the stream's version ->
compare with the expected version -> insert with hashes -> COMMIT, with
`synchronous=FULL`: when `append` returns, the events are on disk. A deferred
transaction that later writes skips the busy handler (instant "database is locked"
errors), and a check outside the transaction lets two writers take the same version.
"""

from __future__ import annotations

import os
import sqlite3
import time
from itertools import chain

from ..errors import BusyError, StorageError
from ..ids import new_uuid
from ..notices import notice
from ..sqlitefile import (
    JOURNAL_APP_ID,
    FileSpec,
    check_existing,
    connect,
    create_atomically,
    journal_uri,
    place_new_file,
    release,
    retain,
    rollback_quietly,
    translate,
)
from .batching import LinkedBatch, events_by_key, intact_records
from .chain import GENESIS, bulk_event_hash, event_hash
from .records import (
    COLUMNS,
    RecordedEvent,
    StateRecord,
    build_rows,
    intact_state,
    state_checksum,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from .base import Fill

SCHEMA_VERSION = 2
"""1: events and journal_meta. 2: stream_states, added in place to a version 1 file the
first time it is opened for writing (readers of a version 1 file see no state records)."""
SPEC = FileSpec("cqrs journal", JOURNAL_APP_ID, SCHEMA_VERSION)

STATES = """
CREATE TABLE IF NOT EXISTS stream_states (
    -- One state record per stream: a cache of the fold of its events up to `version`,
    -- whose event has `hash`. Not append-only: it is replaced as the stream grows.
    stream_id TEXT    PRIMARY KEY,
    version   INTEGER NOT NULL,
    hash      TEXT    NOT NULL,
    data      TEXT    NOT NULL,
    checksum  TEXT    NOT NULL  -- of the other columns: a damaged record reads as none
) WITHOUT ROWID
"""

SCHEMA = (
    """
BEGIN;
CREATE TABLE events (
    -- AUTOINCREMENT: positions are never reused, and VACUUM cannot renumber them.
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            TEXT    NOT NULL,      -- JSON
    recorded_at     TEXT    NOT NULL,      -- UTC, ISO 8601
    command_id      TEXT    NOT NULL,
    idempotency_key TEXT,
    correlation_id  TEXT,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_by_idempotency_key ON events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: events cannot be changed'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the journal is append-only: events cannot be deleted'); END;
CREATE TABLE journal_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER journal_meta_fixed_update BEFORE UPDATE ON journal_meta
BEGIN SELECT RAISE(ABORT, 'journal metadata cannot be changed'); END;
CREATE TRIGGER journal_meta_fixed_delete BEFORE DELETE ON journal_meta
BEGIN SELECT RAISE(ABORT, 'journal metadata cannot be deleted'); END;
"""
    + STATES
    + """;
COMMIT;
"""
)

_TRIGGERS = (
    "events_append_only_update",
    "events_append_only_delete",
    "journal_meta_fixed_update",
    "journal_meta_fixed_delete",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM events"
_SELECT_STATE = "SELECT stream_id, version, hash, data, checksum FROM stream_states"
_SAVE_STATE = (
    "INSERT INTO stream_states (stream_id, version, hash, data, checksum) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
    "hash = excluded.hash, data = excluded.data, checksum = excluded.checksum"
)


_row = RecordedEvent.from_row

CHANGE_CHECK = 0.005
"""Seconds between two looks at `PRAGMA data_version` while `wait_for_change` waits.
Measured here (SQLite 3.40, 2 cores): the pragma costs about 4 us (the head's
`MAX(position)` about the same, but it rereads a page after each commit), and a wake-up
of the sleeping process about 50 us in all; an idle follower checking every 5 ms used
about 1% of a core (2 ms: about 2%), and notices a commit 2.5 ms later on average."""


class SqliteJournal:
    """A journal file: the `Journal` of journal/base.py, and its `JournalFile` capability.
    Callers get one from journal/locator.py; `SqliteJournal.open(path)` is the backend's."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._journal_id: str | None = None
        self._has_states = True
        self._held = retain(path)  # see sqlitefile._HELD
        self._own_commits = 0
        """Batches committed through this connection: its own commits leave its
        `PRAGMA data_version` unchanged, so `wait_for_change` counts them itself."""

    @classmethod
    def open(cls, path: str, *, create: bool = True, readonly: bool = False) -> SqliteJournal:
        """Open the journal at `path`, creating it if missing and `create` is set.

        StorageError for anything that is not a journal this version can use (the file
        is then left untouched); NotFoundError-free: a missing file without `create` is
        a StorageError naming the path."""
        if not check_existing(path, SPEC):
            if not create:
                raise StorageError(f"{path}: no journal here (nothing has been written yet)")
            create_atomically(path, SPEC, initialise)
        conn = connect(path, readonly=readonly)
        try:
            if not readonly:
                conn.execute("PRAGMA synchronous = FULL")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc, path) from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise StorageError(
                f"{path}: journal schema version {version} is newer than "
                f"this cqrs supports ({SCHEMA_VERSION}); upgrade cqrs"
            )
        try:
            has_states = bool(
                conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'stream_states'").fetchone()
            )
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc, path) from None
        if not has_states and not readonly:
            # A version 1 file, or one whose records were dropped (they are a cache).
            _upgrade(conn, path)
            has_states = True
        journal = cls(conn, path)
        journal._has_states = has_states
        return journal

    @property
    def locator(self) -> str:
        return self.path

    def local_file(self) -> SqliteJournal:
        return self

    def sqlite_uri(self) -> str:
        return journal_uri(self.path)

    @property
    def journal_id(self) -> str:
        if self._journal_id is None:
            row = self._query("SELECT value FROM journal_meta WHERE key = 'journal_id'")
            if not row:
                raise StorageError(f"{self.path}: journal has no id (damaged metadata)")
            self._journal_id = str(row[0][0])
        return self._journal_id

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from None

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        rows = self._query(
            f"{_SELECT} WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version",
            (stream_id, from_version),
        )
        return [_row(r) for r in rows]

    def read_tail(self, stream_id: str) -> list[RecordedEvent]:
        if not self._has_states:
            return self.read_stream(stream_id)
        # From the record's version only if the stream has an event there: a record
        # that names a version past the stream's end must not hide its events.
        rows = self._query(
            f"{_SELECT} WHERE stream_id = ?1 AND stream_version >= COALESCE("
            "(SELECT s.version FROM stream_states AS s WHERE s.stream_id = ?1 AND EXISTS "
            "(SELECT 1 FROM events AS e WHERE e.stream_id = ?1 AND e.stream_version = s.version)"
            "), 1) ORDER BY stream_version",
            (stream_id,),
        )
        return [_row(r) for r in rows]

    def read_state(self, stream_id: str) -> StateRecord | None:
        if not self._has_states:
            return None
        rows = self._query(f"{_SELECT_STATE} WHERE stream_id = ?", (stream_id,))
        return intact_state(rows[0]) if rows else None

    def state_records(self, after: str = "", limit: int = 1000) -> list[StateRecord]:
        if not self._has_states:
            return []
        rows = self._query(
            f"{_SELECT_STATE} WHERE stream_id > ? ORDER BY stream_id LIMIT ?", (after, limit)
        )
        return [record for record in map(intact_state, rows) if record is not None]

    def find_by_idempotency_key(self, key: str) -> list[RecordedEvent]:
        rows = self._query(f"{_SELECT} WHERE idempotency_key = ? ORDER BY position", (key,))
        return [_row(r) for r in rows]

    def head(self) -> int:
        (position,) = self._query("SELECT COALESCE(MAX(position), 0) FROM events")[0]
        assert isinstance(position, int)
        return position

    def count_after(self, position: int) -> int:
        """How many events lie beyond `position`: a view's lag."""
        (count,) = self._query("SELECT COUNT(*) FROM events WHERE position > ?", (position,))[0]
        assert isinstance(count, int)
        return count

    def wait_for_change(self, after: int, timeout: float) -> bool:
        """Reads the head, then looks every CHANGE_CHECK seconds at `PRAGMA
        data_version` (it changes when another connection commits) and at this
        connection's own commit count, reading the head again only when they changed.
        Each look is a statement of its own: no read transaction stays open between two."""
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            # The token first, the head second: a commit in between is read now, and
            # changes the token for the next look.
            token = self._change_token()
            if token != seen:
                seen = token
                if self.head() > after:
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(CHANGE_CHECK, left))

    def _change_token(self) -> tuple[object, int]:
        return self._query("PRAGMA data_version")[0][0], self._own_commits

    def _committed(self) -> None:
        self._own_commits += 1

    def read_all(
        self,
        after: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        event_type: str | None = None,
    ) -> list[RecordedEvent]:
        where = ["position > ?"]
        params: list[object] = [after]
        if stream_id is not None:
            where.append("stream_id = ?")
            params.append(stream_id)
        if event_type is not None:
            where.append("event_type = ?")
            params.append(event_type)
        rows = self._query(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY position LIMIT ?", (*params, limit)
        )
        return [_row(r) for r in rows]

    def read_for_build(self, after: int, up_to: int, limit: int) -> list[tuple[object, ...]]:
        # Never needed for a build (the file is attached), kept for the contract.
        return build_rows(self.read_all(after, limit), up_to)

    # Verification (journal/verify.py): the checks only SQL can make cheaply.

    def integrity_problem(self) -> str | None:
        """None if SQLite's integrity check passes, else its first complaint."""
        rows = self._query("PRAGMA integrity_check(1)")
        result = str(rows[0][0]) if rows else "no answer"
        return None if result == "ok" else result

    def schema_problem(self) -> str | None:
        """None if the markers, tables, triggers and journal id are all in place."""
        (app_id,) = self._query("PRAGMA application_id")[0]
        if app_id != JOURNAL_APP_ID:
            return f"application_id is {app_id}, not a cqrs journal's"
        names = {str(row[0]) for row in self._query("SELECT name FROM sqlite_master")}
        for name in ("events", "journal_meta", *_TRIGGERS):
            if name not in names:
                return f"{name} is missing from the schema (the journal was altered)"
        try:
            self.journal_id  # noqa: B018 - reading it is the check
        except StorageError as exc:
            return str(exc)
        return None

    def stream_version_fault(self) -> tuple[int, str] | None:
        """The first (position, problem) where a stream's versions are not 1, 2, 3 ...
        in position order; None if there is none."""
        missing = self._query(
            "SELECT e.position, e.stream_id, e.stream_version FROM events AS e "
            "WHERE e.stream_version > 1 AND NOT EXISTS (SELECT 1 FROM events AS p "
            "WHERE p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1) "
            "ORDER BY e.position LIMIT 1"
        )
        backwards = self._query(
            "SELECT e.position, e.stream_id, e.stream_version FROM events AS e "
            "JOIN events AS p ON p.stream_id = e.stream_id "
            "AND p.stream_version = e.stream_version - 1 "
            "WHERE p.position > e.position ORDER BY e.position LIMIT 1"
        )
        faults = []
        if missing:
            position, stream, version = missing[0]
            faults.append((position, f"stream {stream!r} jumps to version {version}"))
        if backwards:
            position, stream, version = backwards[0]
            faults.append(
                (position, f"stream {stream!r} version {version} comes before its predecessor")
            )
        return min(faults) if faults else None  # type: ignore[return-value]

    def stream_count(self) -> int:
        (count,) = self._query("SELECT COUNT(DISTINCT stream_id) FROM events")[0]
        assert isinstance(count, int)
        return count

    def backup_to(self, dest: str) -> None:
        """Copy the whole journal into the new file `dest` (none may exist there) as one
        consistent snapshot, with SQLite's online backup: writers go on appending."""

        def build(temp: str) -> None:
            target = sqlite3.connect(temp, isolation_level=None)
            try:
                # One step (pages=-1): the copy is one snapshot, taken under a read lock
                # that, in WAL mode, does not stop writers.
                self._conn.backup(target)
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from None
            finally:
                target.close()

        place_new_file(dest, build, what="backup", exclusive=True)

    def batch(self, *, single: bool = False) -> JournalBatch:
        """A write transaction for many appends: all of them are committed, or none.
        Use as a context manager."""
        return JournalBatch(self._conn, self.path, self._committed)

    def close(self) -> None:
        self._conn.close()
        release(self._held)
        self._held = (0, 0)

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_BULK_HASH_STREAMS = 64
"""A round reading this many streams hashes with OpenSSL's SHA-256 (a batch)."""

_MAX_PARAMS = 500
"""Ids per `IN (...)` query: well under SQLite's limit on bound parameters."""

_NAMES = ", ".join(COLUMNS)
_ROW_MARKS = f"({', '.join('?' * len(COLUMNS))})"
_INSERT_ONE = f"INSERT INTO events ({_NAMES}) VALUES {_ROW_MARKS}"

_ROWS_PER_STATEMENT = 1000
"""Rows of one bulk INSERT: a whole round of `cqrs apply` (13,000 bound values, under
SQLite's limit of 32,766; builds older than 3.32 allow 999, and get smaller statements)."""

_BULK_ROWS = 200
"""Fewer rows than this go in with executemany. The bulk statement is prepared once per
connection (about 8 ms: not for a single `cqrs item create`), and pays off from a few
hundred rows on, each about a quarter cheaper than with executemany."""


def _hold_batch_mark(path: str) -> int | None:
    """A descriptor holding a shared flock on `path`-batch (created owner-only), or None
    if that file cannot be made (the batch then just is not announced). A separate file
    with flock, not a lock on the journal: closing a descriptor of the journal itself
    would drop SQLite's own locks (sqlitefile._HELD)."""
    import fcntl

    try:
        fd = os.open(f"{path}-batch", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return None
    return fd


def _batch_running(path: str) -> bool:
    """Whether a long batch holds `path`-batch's flock now."""
    import fcntl

    try:
        fd = os.open(f"{path}-batch", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # an exclusive lock we may have taken goes with it
    return False


def _rows_per_statement(conn: sqlite3.Connection) -> int:
    most = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(COLUMNS)
    return max(1, min(_ROWS_PER_STATEMENT, most))


def _insert(conn: sqlite3.Connection, rows: Sequence[RecordedEvent]) -> None:
    """Insert `rows`: many with one statement per round's worth of rows (so that SQLite
    does a round's work in one call), few with executemany."""
    if len(rows) < _BULK_ROWS:
        conn.executemany(_INSERT_ONE, rows)
        return
    per_statement = _rows_per_statement(conn)
    # A fixed number of rows, so that one prepared statement serves every round: a
    # shorter round pads its values with rows of NULLs, which the WHERE leaves out.
    # (sqlite3's statement cache finds it by its text, built here in about 20 us.)
    marks = ", ".join([_ROW_MARKS] * int(per_statement))
    sql = f"INSERT INTO events ({_NAMES}) SELECT * FROM (VALUES {marks}) WHERE column1 IS NOT NULL"
    width = per_statement * len(COLUMNS)
    for start in range(0, len(rows), per_statement):
        values = list(chain.from_iterable(rows[start : start + per_statement]))
        values += [None] * (width - len(values))
        conn.execute(sql, values)


class JournalBatch(LinkedBatch):
    """Appends inside one write transaction (BEGIN IMMEDIATE ... COMMIT).

    Rows are buffered, and inserted a round at a time (with one statement for up to
    1,000 rows); reads through the batch insert them first, so they see the batch's own
    appends. Positions are assigned here (the transaction holds the write lock, so the
    next position is known) and the hash chain is carried along in memory. An append
    must follow a read of its stream's version in the same round (between two reads
    that insert), which keeps memory bounded by a round, not by the whole batch.

    (Inserting on a helper thread while the next round is decided was tried: sqlite3
    holds the GIL while it binds the 13,000 values, and on this 2-core machine it gained
    nothing measurable.)
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        committed: Callable[[], None] | None = None,
        *,
        announce: bool = True,
    ) -> None:
        super().__init__(path)
        self._conn = conn
        self._path = path
        # A batch that builds a new journal (an import, a first `cqrs apply`) has no one
        # to announce itself to: nobody can wait on a journal that does not exist yet.
        self._announce_long = announce
        self._on_commit = committed
        """Told after each commit (the journal counts its own commits)."""
        self._pending: list[RecordedEvent] = []
        self._states: dict[str, StateRecord] = {}
        self._rounds = 0
        self._announced: int | None = None  # the descriptor of the -batch mark, held

    def __enter__(self) -> JournalBatch:
        conn = self._conn
        try:
            self._begin()
            # One statement for both: every append runs it, under the write lock.
            last_hash, seq = conn.execute(
                "SELECT (SELECT hash FROM events ORDER BY position DESC LIMIT 1), "
                "(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'events')"
            ).fetchone()
            self._prev_hash = last_hash or GENESIS
            self._next_position = seq + 1
        except sqlite3.Error as exc:
            rollback_quietly(conn)
            raise translate(exc, self._path) from None
        return self

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting past the busy timeout for as long as a long batch
        holds the lock: `cqrs apply` holds the journal for its whole run, and a write
        started meanwhile waits for it, saying so once, rather than fail as busy. Any
        other holder past the busy timeout still gives BusyError (exit 6)."""
        said = False
        while True:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = isinstance(translate(exc, self._path), BusyError)
                if not busy or not _batch_running(self._path):
                    raise
                if not said:
                    notice(
                        f"cqrs: note: {self._path} is held by a batch (cqrs apply); "
                        "waiting for it to finish"
                    )
                    said = True

    def _announce(self) -> None:
        """Tell writers that wait for the lock that this is a long batch (see _begin):
        a shared flock on the journal's `-batch` file, held until the batch ends."""
        if self._announced is None:
            self._announced = _hold_batch_mark(self._path)

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        try:
            self._finish(exc_type)
        finally:
            if self._announced is not None:
                os.close(self._announced)  # releases the flock
                self._announced = None

    def _finish(self, exc_type: object) -> None:
        if exc_type is not None:
            rollback_quietly(self._conn)
            return
        try:
            self.flush()
            self._conn.execute("COMMIT")
        except sqlite3.Error as error:
            rollback_quietly(self._conn)
            raise translate(error, self._path) from None
        except BaseException:
            rollback_quietly(self._conn)
            raise
        if self._on_commit is not None:
            self._on_commit()

    def flush(self) -> None:
        """Insert the buffered rows and state records; forget the stream versions of
        this round."""
        if self._pending:
            try:
                _insert(self._conn, self._pending)
            except sqlite3.IntegrityError as exc:
                raise StorageError(f"{self._path}: append refused: {exc}") from None
            except sqlite3.Error as exc:
                raise translate(exc, self._path) from None
            self._pending = []
        if self._states:
            try:
                self._conn.executemany(
                    _SAVE_STATE,
                    [
                        (r.stream_id, r.version, r.hash, r.data, state_checksum(r))
                        for r in self._states.values()
                    ],
                )
            except sqlite3.Error as exc:
                raise translate(exc, self._path) from None
            self._states = {}
        self._versions.clear()

    def _select(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise translate(exc, self._path) from None

    def _select_in(self, where: str, values: list[str], order: str) -> Iterator[RecordedEvent]:
        """The stored events whose `where` column is one of `values`, chunk by chunk."""
        for start in range(0, len(values), _MAX_PARAMS):
            chunk = values[start : start + _MAX_PARAMS]
            marks = ",".join("?" * len(chunk))
            sql = f"{_SELECT} WHERE {where} IN ({marks}) ORDER BY {order}"
            for row in self._select(sql, chunk):
                yield _row(row)

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version (0 if it has no events)."""
        if stream_id in self._versions:
            return self._versions[stream_id]
        self.flush()
        (version,) = self._select(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?",
            (stream_id,),
        )[0]
        assert isinstance(version, int)
        self._versions[stream_id] = version
        return version

    def read_streams(
        self, stream_ids: Sequence[str], from_versions: Mapping[str, int] | None = None
    ) -> dict[str, list[RecordedEvent]]:
        """The events of each stream (only streams that have any), in version order,
        from `from_versions[stream]` (default 1) on; starts a new round."""
        self.flush()
        self._rounds += 1
        if self._rounds == 3 and self._announce_long:  # a long batch (_begin)
            self._announce()
        unique = list(dict.fromkeys(stream_ids))
        if len(unique) >= _BULK_HASH_STREAMS and self._hash is event_hash:
            self._hash = bulk_event_hash()
        found: dict[str, list[RecordedEvent]] = {}
        whole = unique if not from_versions else [s for s in unique if s not in from_versions]
        for event in self._select_in("stream_id", whole, "stream_id, stream_version"):
            found.setdefault(event.stream_id, []).append(event)
        if from_versions:
            for event in self._select_from_versions(
                [(s, from_versions[s]) for s in unique if s in from_versions]
            ):
                found.setdefault(event.stream_id, []).append(event)
        for stream_id in unique:
            events = found.get(stream_id)
            if events:
                self._versions[stream_id] = events[-1].stream_version
            elif not from_versions or stream_id not in from_versions:
                self._versions[stream_id] = 0
        return found

    def _select_from_versions(self, wanted: list[tuple[str, int]]) -> Iterator[RecordedEvent]:
        """The events of each (stream, from version) pair, chunk by chunk."""
        for start in range(0, len(wanted), _MAX_PARAMS // 2):
            chunk = wanted[start : start + _MAX_PARAMS // 2]
            pairs = ", ".join(["(?, ?)"] * len(chunk))
            sql = (
                f"WITH wanted (stream, first) AS (VALUES {pairs}) "
                f"{_SELECT} JOIN wanted ON stream_id = wanted.stream "
                "AND stream_version >= wanted.first ORDER BY stream_id, stream_version"
            )
            for row in self._select(sql, list(chain.from_iterable(chunk))):
                yield _row(row)

    def read_states(self, stream_ids: Sequence[str]) -> dict[str, StateRecord]:
        """The state records of those streams that have one; starts a new round."""
        self.flush()
        unique = list(dict.fromkeys(stream_ids))
        found: dict[str, StateRecord] = {}
        for start in range(0, len(unique), _MAX_PARAMS):
            chunk = unique[start : start + _MAX_PARAMS]
            marks = ",".join("?" * len(chunk))
            found |= intact_records(
                self._select(f"{_SELECT_STATE} WHERE stream_id IN ({marks})", chunk)
            )
        return found

    def save_state(self, record: StateRecord) -> None:
        self._states[record.stream_id] = record

    def find_by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        """The events appended under each key that was used (this batch included)."""
        self.flush()
        return events_by_key(
            self._select_in("idempotency_key", list(dict.fromkeys(keys)), "position")
        )

    def _buffer(self, events: list[RecordedEvent]) -> None:
        self._pending += events


class SqliteBackend:
    """Journal files: a locator is a path."""

    def exists(self, locator: str) -> bool:
        return check_existing(locator, SPEC)

    def find(self, locator: str) -> SqliteJournal | None:
        if not check_existing(locator, SPEC):
            return None
        return SqliteJournal.open(locator, create=False, readonly=True)

    def open(self, locator: str) -> SqliteJournal:
        return SqliteJournal.open(locator)

    def create_from(self, locator: str, journal_id: str, fill: Fill) -> int:
        stored = 0

        def init(conn: sqlite3.Connection) -> None:
            nonlocal stored
            initialise(conn, journal_id)
            with JournalBatch(conn, locator, announce=False) as batch:
                stored = fill(batch)

        # Built under a temporary name and linked into place only when complete.
        create_atomically(locator, SPEC, init, exclusive=True)
        return stored


BACKEND = SqliteBackend()


def _upgrade(conn: sqlite3.Connection, path: str) -> None:
    """Add the state records' table, in place (under the write lock, so that two writers
    upgrading at once do it once), and mark the file as of this schema version."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(STATES)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        rollback_quietly(conn)
        conn.close()
        raise translate(exc, path) from None


def initialise(conn: sqlite3.Connection, journal_id: str | None = None) -> None:
    """Create the journal's schema in a new file; a new id unless one is given (import)."""
    conn.executescript(SCHEMA)
    conn.execute(
        "INSERT INTO journal_meta (key, value) VALUES ('journal_id', ?)",
        (journal_id or new_uuid(),),
    )
