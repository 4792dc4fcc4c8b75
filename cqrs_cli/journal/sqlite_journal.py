"""The event journal on one SQLite file.

Every append is BEGIN IMMEDIATE -> idempotency check -> read the stream's version ->
compare with the expected version -> insert with hashes -> COMMIT, with
`synchronous=FULL`: when `append` returns, the events are on disk. A deferred
transaction that later writes skips the busy handler (instant "database is locked"
errors), and a check outside the transaction lets two writers take the same version.
"""

from __future__ import annotations

import sqlite3

from ..errors import StorageError, WrongExpectedVersion
from ..ids import new_uuid
from ..sqlitefile import (
    JOURNAL_APP_ID,
    FileSpec,
    check_existing,
    connect,
    create_atomically,
    rollback_quietly,
    translate,
)
from .chain import GENESIS, event_hash
from .records import COLUMNS, AppendMetadata, AppendResult, NewEvent, RecordedEvent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

SCHEMA_VERSION = 1
SPEC = FileSpec("cqrs journal", JOURNAL_APP_ID, SCHEMA_VERSION)

SCHEMA = """
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
COMMIT;
"""

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM events"
_INSERT = (
    "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, "
    "data, recorded_at, command_id, idempotency_key, correlation_id, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _row(row: tuple[object, ...]) -> RecordedEvent:
    return RecordedEvent(*row)  # type: ignore[arg-type]


class SqliteJournal:
    """A journal file. Open with `SqliteJournal.open(path)`."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._journal_id: str | None = None

    @classmethod
    def open(cls, path: str, *, create: bool = True, readonly: bool = False) -> SqliteJournal:
        """Open the journal at `path`, creating it if missing and `create` is set.

        StorageError for anything that is not a journal this version can use (the file
        is then left untouched); NotFoundError-free: a missing file without `create` is
        a StorageError naming the path."""
        if not check_existing(path, SPEC):
            if not create:
                raise StorageError(f"{path}: no journal here (nothing has been written yet)")
            create_atomically(path, SPEC, _initialise)
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
        return cls(conn, path)

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

    def read_stream(self, stream_id: str) -> list[RecordedEvent]:
        rows = self._query(f"{_SELECT} WHERE stream_id = ? ORDER BY stream_version", (stream_id,))
        return [_row(r) for r in rows]

    def find_by_idempotency_key(self, key: str) -> list[RecordedEvent]:
        rows = self._query(f"{_SELECT} WHERE idempotency_key = ? ORDER BY position", (key,))
        return [_row(r) for r in rows]

    def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        rows = self._query(
            f"{_SELECT} WHERE position > ? ORDER BY position LIMIT ?", (after, limit)
        )
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

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: AppendMetadata,
    ) -> AppendResult:
        conn = self._conn
        key = metadata.idempotency_key
        try:
            conn.execute("BEGIN IMMEDIATE")
            if key is not None:
                done = conn.execute(
                    f"{_SELECT} WHERE idempotency_key = ? ORDER BY position", (key,)
                ).fetchall()
                if done:
                    conn.execute("COMMIT")
                    return AppendResult([_row(r) for r in done], already_applied=True)
            (actual,) = conn.execute(
                "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = ?",
                (stream_id,),
            ).fetchone()
            if actual != expected_version:
                conn.execute("ROLLBACK")
                raise WrongExpectedVersion(stream_id, expected_version, actual)
            last = conn.execute("SELECT hash FROM events ORDER BY position DESC LIMIT 1").fetchone()
            prev_hash = last[0] if last else GENESIS
            recorded: list[RecordedEvent] = []
            for offset, event in enumerate(events, start=1):
                version = expected_version + offset
                fields = (
                    event.event_id,
                    stream_id,
                    version,
                    event.event_type,
                    event.schema_version,
                    event.data,
                    metadata.recorded_at,
                    metadata.command_id,
                    key,
                    metadata.correlation_id,
                )
                digest = event_hash(prev_hash, *fields)
                cursor = conn.execute(_INSERT, (*fields, prev_hash, digest))
                position = cursor.lastrowid
                assert position is not None
                recorded.append(RecordedEvent(position, *fields, prev_hash, digest))
                prev_hash = digest
            conn.execute("COMMIT")
            return AppendResult(recorded, already_applied=False)
        except sqlite3.Error as exc:
            rollback_quietly(conn)
            raise translate(exc, self.path) from None
        except BaseException:
            rollback_quietly(conn)
            raise

    def close(self) -> None:
        self._conn.close()


def _initialise(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO journal_meta (key, value) VALUES ('journal_id', ?)", (new_uuid(),))
