"""The event journal on a PostgreSQL server, for many writers on many hosts.

How it keeps the contract of journal/base.py with concurrent writers
--------------------------------------------------------------------
Positions in read order. A writer takes its positions while holding a short session
advisory lock (the "reservation"), and in the same moment its transaction id
(`pg_current_xact_id()`, stored in each event's `tx_id`). So transaction ids and
positions are handed out in the same order. A batch of many commands holds the lock
from its first append to the end of its inserts; a command of one event (most writes:
the server function append_event) only while it takes its id and its position. The
lock is released before COMMIT: commits (and their fsyncs) run in parallel.
Transactions may still commit out of position order, so a reader reads only
`tx_id < pg_snapshot_xmin(pg_current_snapshot())`, the events of transactions that
have all ended: any event it may see later belongs to a transaction that was still
open, which took its positions after every one it read. No reader skips or repeats an
event, and a checkpoint stays one number. The price: a transaction left open in the
cluster (any that has written, even outside cqrs) holds readers back until it ends.

Per-stream concurrency. `UNIQUE (stream_id, stream_version)`: of two writers of one
version, the second fails at its insert and decides again (WrongExpectedVersion). So a
single command need not read its stream's version again inside its transaction: the
version it read before is checked by the insert (`go_on_from`), and one round trip
carries its whole write (SINGLE_EVENT).
Idempotency keys have a table of their own with the key as primary key, for the same
reason: two racing retries cannot both apply a command.

The hash chain. No writer can know the hash of another's uncommitted event, so each
event links to its stream's previous event (journal/chain.py accepts both links).

Change notices. A writer sends `NOTIFY` after its commit (outside it: a NOTIFY inside
takes a cluster-wide lock at commit); a follower LISTENs, and polls every
`_POLL` seconds as well, for notices lost to a crash or a reader held back.
"""

from __future__ import annotations

import zlib

from ..errors import BusyError, CqrsError, StorageError, UsageError, WrongExpectedVersion
from ..notices import notice
from .batching import LinkedBatch, events_by_key, intact_records
from .chain import GENESIS
from .postgres_connect import PgLocator, connect, parse, translate
from .postgres_sql import (
    APPEND_EVENT,
    APPEND_ONE,
    CHANNEL,
    CREATE_SCHEMA,
    DDL,
    FLUSH,
    FLUSH_AND_RELEASE,
    HELD_BY_A_BATCH,
    LOCK_CLASS,
    LOOK_AGAIN,
    NOTIFY,
    RESERVE,
    SELECT_EVENTS,
    SELECT_FOR_BUILD,
    SELECT_STATE,
    SINGLE,
    SINGLE_EVENT,
    VISIBLE,
    WRITES_IN_FLIGHT,
)
from .records import COLUMNS, RecordedEvent, StateRecord, intact_state, state_checksum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from psycopg2.extensions import connection, cursor

    from .base import Fill
    from .records import AppendMetadata, NewEvent

SCHEMA_VERSION = 1
_POLL = 0.25
"""Seconds between two looks at the head while a follower waits (besides notices)."""
_FILL_ROWS = 5000
"""Rows an import buffers before it inserts them (memory stays bounded)."""


class PostgresJournal:
    """One connection to the journal's server; reads in autocommit mode, batches in a
    transaction of their own on the same connection."""

    def __init__(self, where: PgLocator, conn: connection, journal_id: str) -> None:
        self._where = where
        self._conn = conn
        self._id = journal_id
        self._lock_key = zlib.crc32(where.schema.encode()) - (1 << 31)
        self._listen: connection | None = None
        self.append_event = True
        """Whether single commands of one event use append_event (False: this role
        could not make it in a journal made before it)."""

    @property
    def journal_id(self) -> str:
        return self._id

    @property
    def locator(self) -> str:
        return self._where.shown

    @property
    def schema(self) -> str:
        return self._where.schema

    @property
    def lock_keys(self) -> tuple[int, int]:
        """The two keys of the reservation's advisory lock."""
        return LOCK_CLASS, self._lock_key

    def local_file(self) -> None:
        return None

    def _connection(self) -> connection:
        """The journal's connection, or a new one if the server broke the last (a
        restart, a crash): the call that found it broken failed (exit 6: retry), and a
        handle that lives on (a CommandService, a follower) goes on with its next call
        instead of failing for ever. A connection closed on purpose stays closed."""
        if self._conn.closed == 2:
            self._drop_listener()
            self._conn = connect(self._where)
        return self._conn

    def _fetch(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple]:  # type: ignore[type-arg]
        import psycopg2

        try:
            with self._connection().cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg2.Error as exc:
            raise translate(exc, self._where) from None

    def _events(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> list[RecordedEvent]:
        return [RecordedEvent.from_row(row) for row in self._fetch(sql, params)]

    def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        return self._events(
            f"{SELECT_EVENTS} WHERE stream_id = %s AND stream_version >= %s "
            "ORDER BY stream_version",
            (stream_id, from_version),
        )

    def read_state(self, stream_id: str) -> StateRecord | None:
        rows = self._fetch(
            "SELECT stream_id, version, hash, data, checksum FROM stream_states "
            "WHERE stream_id = %s",
            (stream_id,),
        )
        return intact_state(rows[0]) if rows else None

    def read_tail(self, stream_id: str) -> list[RecordedEvent]:
        # From the record's version when the stream still holds that event (a record
        # past the stream's end must not hide its events), else from version 1.
        return self._events(
            f"{SELECT_EVENTS} WHERE stream_id = %(s)s AND stream_version >= COALESCE(("
            f"SELECT r.version FROM stream_states r WHERE r.stream_id = %(s)s "
            f"AND EXISTS (SELECT 1 FROM events e WHERE e.stream_id = %(s)s "
            "AND e.stream_version = r.version)), 1) ORDER BY stream_version",
            {"s": stream_id},
        )

    def state_records(self, after: str = "", limit: int = 1000) -> list[StateRecord]:
        rows = self._fetch(
            "SELECT stream_id, version, hash, data, checksum FROM stream_states "
            "WHERE stream_id > %s ORDER BY stream_id LIMIT %s",
            (after, limit),
        )
        return [record for record in map(intact_state, rows) if record is not None]

    def find_by_idempotency_key(self, key: str) -> list[RecordedEvent]:
        return self._events(f"{SELECT_EVENTS} WHERE idempotency_key = %s ORDER BY position", (key,))

    def read_all(
        self,
        after: int = 0,
        limit: int = 1000,
        *,
        stream_id: str | None = None,
        event_type: str | None = None,
    ) -> list[RecordedEvent]:
        where = [f"position > %s AND {VISIBLE}"]
        params: list[object] = [after]
        if stream_id is not None:
            where.append("stream_id = %s")
            params.append(stream_id)
        if event_type is not None:
            where.append("event_type = %s")
            params.append(event_type)
        params.append(limit)
        return self._events(
            f"{SELECT_EVENTS} WHERE {' AND '.join(where)} ORDER BY position LIMIT %s", params
        )

    def read_for_build(self, after: int, up_to: int, limit: int) -> list[tuple[object, ...]]:
        return self._fetch(SELECT_FOR_BUILD, (after, up_to, limit))

    def head(self) -> int:
        import psycopg2

        try:
            return _head(self._connection())
        except psycopg2.Error as exc:
            raise translate(exc, self._where) from None

    def count_after(self, position: int) -> int:
        rows = self._fetch(
            f"SELECT count(*) FROM events WHERE position > %s AND {VISIBLE}",
            (position,),
        )
        return int(rows[0][0])

    def wait_for_change(self, after: int, timeout: float) -> bool:
        """LISTEN for the writers' notices, and look at the head every _POLL seconds
        too: a notice is lost if its writer dies between COMMIT and NOTIFY, and an event
        held back by another open transaction becomes readable with no notice at all.
        On a connection of its own, so that this handle can append meanwhile (from
        another thread) without its batch's transaction mixing with the waiting."""
        import select
        import time

        import psycopg2

        deadline = time.monotonic() + timeout
        try:
            listener = self._listener()
            while True:
                if _head(listener) > after:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                select.select([listener], [], [], min(left, _POLL))
                listener.poll()
                listener.notifies.clear()
        except psycopg2.Error as exc:
            self._drop_listener()
            raise translate(exc, self._where) from None

    def _listener(self) -> connection:
        if self._listen is None:
            listen = connect(self._where)
            with listen.cursor() as cur:
                cur.execute("LISTEN cqrs_journal")
            self._listen = listen
        return self._listen

    def _drop_listener(self) -> None:
        if self._listen is not None:
            try:
                self._listen.close()
            except Exception:
                pass
            self._listen = None

    def batch(self, *, single: bool = False) -> PostgresBatch:
        return PostgresBatch(self, single=single)

    def notify(self) -> None:
        """Wake the followers (after a commit): best effort, they poll as well. In a
        transaction that does not wait for its flush: a NOTIFY holds a cluster-wide
        lock through its commit."""
        try:
            with self._conn.cursor() as cur:
                cur.execute(NOTIFY, (CHANNEL, self.schema))
        except Exception:
            pass

    def verify_problem(self) -> str | None:
        """None unless the events carry transaction ids this server has not handed out
        yet: a journal restored into another cluster with pg_dump, where new events
        would sort before old ones and readers would skip them."""
        rows = self._fetch(
            "SELECT count(*) FROM events WHERE tx_id >= pg_snapshot_xmax(pg_current_snapshot())"
        )
        if rows[0][0]:
            return (
                "events carry transaction ids from another server (restored with "
                "pg_dump?): move journals with `cqrs journal export | cqrs journal import`"
            )
        return None

    def close(self) -> None:
        self._drop_listener()
        try:
            self._conn.close()
        except Exception:
            pass

    def __enter__(self) -> PostgresJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _head(conn: connection) -> int:
    """The position of the last event readers may read (0: none yet)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT position FROM events WHERE {VISIBLE} ORDER BY position DESC LIMIT 1")
        row = cur.fetchone()
    return int(row[0]) if row else 0


class PostgresBatch(LinkedBatch):
    """One transaction of appends. Rows are buffered and inserted a round at a time;
    positions are taken under the reservation lock (see the module's doc), held from
    the first append to the end of the batch's inserts, never through COMMIT.

    A `single` batch (one command: journal/base.py) reads in autocommit mode and sends
    its one append, its commit and its notice in one round trip (SINGLE), where the
    server assigns the positions; the events its append returned get them then."""

    def __init__(
        self,
        journal: PostgresJournal,
        *,
        own_transaction: bool = True,
        fresh: bool = False,
        single: bool = False,
    ) -> None:
        super().__init__(journal.locator)
        self._journal = journal
        self._conn = journal._connection()
        self._own = own_transaction
        self._ready = False
        self._stream_heads = {}
        self._reserved = False
        self._pending: list[RecordedEvent] = []
        self._states: dict[str, StateRecord] = {}
        self._keys: dict[str, str] = {}
        self._last_position = 0
        self._single = single and own_transaction
        self._appended: list[RecordedEvent] | None = None
        """A single batch's appended events: their positions are set at the commit."""
        self._known: dict[str, tuple[int, str]] | None = {} if fresh else None
        """For a batch that fills a new journal (an import): every stream's version and
        last hash, all of them known here, so no stream is looked up on the server
        (a round trip per event made an import a thousand times slower)."""

    # -- the transaction ------------------------------------------------------------

    def __enter__(self) -> PostgresBatch:
        if self._own and not self._single:
            self._conn.autocommit = False
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        import psycopg2

        if self._single:
            if exc_type is None and self._pending:
                self._commit_single()
            return
        committed = False
        try:
            if exc_type is None:
                try:
                    self._flush(release=True)
                    if self._own:
                        self._conn.commit()
                        committed = True
                except psycopg2.Error as error:
                    raise self._translate(error) from None
        finally:
            if self._own:
                self._end(committed)
        if committed and self._last_position:
            self._journal.notify()

    def _end(self, committed: bool) -> None:
        """Back to autocommit, after a rollback unless the batch committed, with the
        reservation lock given up whatever state the connection is in (a lost
        connection takes the lock with it)."""
        conn = self._conn
        try:
            if not committed:
                conn.rollback()
            conn.autocommit = True
            if self._reserved:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s, %s)", self._lock())
        except Exception:
            pass
        self._reserved = False

    def _lock(self) -> tuple[int, int]:
        return self._journal.lock_keys

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        metadata: AppendMetadata,
    ) -> list[RecordedEvent]:
        if self._single and self._appended is not None:
            raise RuntimeError("a single batch makes one append")
        recorded = super().append(stream_id, expected_version, events, metadata)
        if self._single:
            self._appended = recorded
        return recorded

    def _commit_single(self) -> None:
        """The single batch's append, commit and notice (SINGLE); then the appended
        events get the positions the server gave them."""
        import psycopg2

        from ..sqlitefile import busy_timeout

        pending, count = self._pending, len(self._pending)
        timeout = f"{int(busy_timeout() * 1000)}ms"
        notice_params = (CHANNEL, self._journal.schema)
        one = self._one_event() if self._journal.append_event else None
        conn = self._conn
        said = installed = False
        row: tuple[object, ...] | None = None
        while True:
            if one is not None:
                sql, params = SINGLE_EVENT, [timeout, *self._lock(), *one, *notice_params]
            else:
                columns = map(list, list(zip(*pending, strict=True))[1:])
                sql = SINGLE
                params = [
                    timeout,
                    *self._lock(),
                    *columns,
                    *self._key_and_state_columns(),
                    *notice_params,
                ]
            self._reserved = True
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    row = cur.fetchone()
                break
            except psycopg2.Error as error:
                self._end_single()
                # The string goes on after the append's COMMIT (the followers' notice):
                # an error there (a full notice queue, a lock timeout the role sets)
                # comes after the write is in. It is then a success, never a retry
                # that would append the command twice.
                row = self._committed_already(pending[-1])
                if row is not None:
                    break
                if error.pgcode == "42883" and one is not None:
                    # undefined_function: a journal made before append_event, made
                    # now (once: if it is still not found, append_one does the work).
                    if installed or not self._install_append_event():
                        one = None
                    installed = True
                    continue
                if error.pgcode == "55P03" and self._batch_holds_the_lock():
                    # As on SQLite: a write waits for a long `cqrs apply` (which holds
                    # the lock from its first append to its last insert), saying so
                    # once, rather than fail as busy; anything else past the busy
                    # timeout is still busy.
                    if not said:
                        notice(
                            f"cqrs: note: {self._journal.locator} is held by a batch "
                            "(cqrs apply); waiting for it to finish"
                        )
                        said = True
                    continue
                raise self._translate(error) from None
            except BaseException:
                self._end_single()
                raise
        self._reserved = False
        assert row is not None
        last = int(row[0])  # type: ignore[call-overload]
        first = last - count + 1
        self._pending = []
        self._last_position = last
        appended = self._appended
        assert appended is not None
        appended[:] = [
            RecordedEvent.from_row((first + n, *event[1:])) for n, event in enumerate(appended)
        ]

    def _one_event(self) -> tuple[object, ...] | None:
        """append_event's arguments for a command of one event (most of them), with
        its key and its state record if it has them; None for any other batch."""
        if len(self._pending) != 1:
            return None
        event = self._pending[0]
        keys, states = self._keys, self._states
        if keys and list(keys.items()) != [(event.idempotency_key, event.stream_id)]:
            return None
        state = None
        if states:
            record = states.get(event.stream_id)
            if (
                len(states) != 1
                or record is None
                or (record.version, record.hash) != (event.stream_version, event.hash)
            ):
                return None
            state = record
        return (
            *event[1:],
            None if state is None else state.data,
            None if state is None else state_checksum(state),
        )

    def _committed_already(self, event: RecordedEvent) -> tuple[object, ...] | None:
        """After an error from SINGLE: (its position,) if `event`, the append's last,
        is in the journal, which it is when the error came after its COMMIT; None if
        not, or if the server cannot be asked (the caller's error then stands). By its
        id and its hash, which covers its content and its link: an event id stored
        already by another event is the append's refusal, not its success."""
        try:
            with self._conn.cursor() as cur:
                cur.execute(
                    "SELECT position FROM events WHERE event_id = %s AND hash = %s",
                    (event.event_id, event.hash),
                )
                return cur.fetchone()
        except Exception:
            return None

    def _install_append_event(self) -> bool:
        """Make append_event in a journal made before it (by an earlier cqrs), in a
        transaction of its own under the lock that creating a journal takes; False
        (and the journal goes on with append_one) if this role may not."""
        import psycopg2

        from ..sqlitefile import busy_timeout

        conn = self._conn
        try:
            conn.autocommit = False
            with conn.cursor() as cur:
                # Not past the busy timeout: an import elsewhere on the server holds
                # this lock for its whole run, and writes go on without the upgrade.
                cur.execute("SET LOCAL lock_timeout = %s", (f"{int(busy_timeout() * 1000)}ms",))
                cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, 0))
                cur.execute(APPEND_EVENT)
            conn.commit()
            return True
        except psycopg2.Error:
            try:
                conn.rollback()
            except psycopg2.Error:
                pass  # a lost connection: the write that follows says so
            self._journal.append_event = False
            return False
        finally:
            try:
                conn.autocommit = True
            except psycopg2.Error:
                pass

    def _batch_holds_the_lock(self) -> bool:
        """Whether the reservation lock is held by a batch of many commands (which
        names itself in application_name while it holds it)."""
        try:
            with self._conn.cursor() as cur:
                cur.execute(HELD_BY_A_BATCH, self._lock())
                return bool(cur.fetchone() == (True,))
        except Exception:
            return False

    def _end_single(self) -> None:
        """After a failed SINGLE: its transaction rolled back, its lock given up."""
        try:
            with self._conn.cursor() as cur:
                cur.execute("ROLLBACK")
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", self._lock())
        except Exception:
            pass
        self._reserved = False

    def _key_and_state_columns(self) -> list[list[object]]:
        """The buffered keys and state records as the columns FLUSH and SINGLE take."""
        nothing: tuple[object, ...] = ()
        states = [(*r, state_checksum(r)) for r in self._states.values()]
        state_columns = list(zip(*states, strict=True)) if states else [nothing] * 5
        return [list(self._keys), list(self._keys.values()), *map(list, state_columns)]

    def _prepare(self) -> None:
        """The reservation, in one round trip: the lock, this transaction's id, and
        the next position. (A single batch takes none: the server hands its positions
        out at the commit, and these are placeholders till then.)"""
        import psycopg2

        if self._single:
            self._next_position = 1
            self._ready = True
            return

        from ..sqlitefile import busy_timeout

        try:
            with self._conn.cursor() as cur:
                self._reserved = True  # whatever happens next, unlock at the end
                cur.execute(RESERVE, (f"{int(busy_timeout() * 1000)}ms", *self._lock()))
                last, called = cur.fetchone()  # type: ignore[misc]
                self._wait_for_writes_in_flight(cur, busy_timeout())
        except psycopg2.Error as error:
            raise self._translate(error) from None
        self._next_position = (last if called else last - 1) + 1
        self._ready = True

    def _wait_for_writes_in_flight(self, cur: cursor, timeout: float) -> None:
        """Until the writes that took positions before this batch's reservation have
        ended (WRITES_IN_FLIGHT), so that the batch reads after them; BusyError past
        `timeout` seconds. They commit within milliseconds: the single commands run
        one round trip each, and a batch before this one has only its COMMIT left."""
        import time

        deadline = time.monotonic() + timeout
        pause = 0.0005
        while True:
            cur.execute(WRITES_IN_FLIGHT)
            if cur.fetchone() == (0,):
                return
            if time.monotonic() > deadline:
                raise BusyError(
                    f"{self._journal.locator}: other writes have not ended within the busy "
                    "timeout (a transaction left open?); nothing was written, retry"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _translate(self, error: BaseException) -> CqrsError:
        constraint = getattr(getattr(error, "diag", None), "constraint_name", None)
        if constraint in ("events_stream_version_unique", "idempotency_keys_pkey"):
            return _conflict(error)
        if constraint == "events_event_id_unique":
            detail = getattr(getattr(error, "diag", None), "message_detail", None) or ""
            return StorageError(
                f"{self._journal.locator}: append refused: event_id stored already ({detail})"
            )
        return translate(error, self._journal._where)

    # -- reads inside the batch (they see its own appends) --------------------------

    def _flush(self, release: bool = False) -> None:
        """Insert the buffered rows, keys and state records (all in one statement, each
        as arrays of columns); with `release`, also advance the position counter past
        the batch and give the reservation up, in the same round trip: the positions
        are taken and the rows are in, and COMMIT follows without the lock. Forgets
        this round's stream versions."""
        if self._single and self._pending:
            raise RuntimeError("a single batch reads nothing after its append")
        release = release and self._reserved
        if release and not self._pending and not self._last_position:
            # Reserved, but nothing appended: the lock back, the position counter as
            # it is (advancing it would leave a gap in an empty journal).
            with self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", self._lock())
            self._reserved = False
            release = False
        if self._pending or self._keys or self._states or release:
            pending = self._pending
            if pending:
                self._last_position = pending[-1].position
            nothing: tuple[object, ...] = ()
            columns = list(zip(*pending, strict=True)) if pending else [nothing] * len(COLUMNS)
            params = [*map(list, columns), *self._key_and_state_columns()]
            with self._conn.cursor() as cur:
                if release:
                    cur.execute(FLUSH_AND_RELEASE, [*params, self._last_position, *self._lock()])
                    self._reserved = False
                else:
                    cur.execute(FLUSH, params)
            self._pending = []
            self._keys = {}
            self._states = {}
        self._versions.clear()

    def _query(self, sql: str, params: Sequence[object] | Mapping[str, object]) -> list[tuple]:  # type: ignore[type-arg]
        import psycopg2

        if not self._ready and not self._single and self._known is None:
            # A batch of many commands reserves before its first read, not at its first
            # append: no single writer takes a position between the two, so none can
            # commit a version of an item the batch has read and is about to append to
            # (the batch would fail at its insert, and `cqrs apply` as a whole).
            self._prepare()
        try:
            self._flush()
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg2.Error as error:
            raise self._translate(error) from None

    def stream_version(self, stream_id: str) -> int:
        if stream_id in self._versions:
            return self._versions[stream_id]
        if self._known is not None:
            version, head = self._known.get(stream_id, (0, GENESIS))
            self._versions[stream_id] = version
            self._stream_heads[stream_id] = head  # type: ignore[index]
            return version
        rows = self._query(
            "SELECT stream_version, hash FROM events WHERE stream_id = %s "
            "ORDER BY stream_version DESC LIMIT 1",
            (stream_id,),
        )
        version, head = (int(rows[0][0]), rows[0][1]) if rows else (0, GENESIS)
        self._versions[stream_id] = version
        self._stream_heads[stream_id] = head  # type: ignore[index]
        return version

    def go_on_from(self, stream_id: str, version: int, head: str) -> bool:
        """A single command's batch reads nothing here: its stream version's unique
        constraint refuses a stale append at the commit (WrongExpectedVersion), so the
        caller's read of the stream stands, and the round trip of a read is saved (a
        third of a write's cost on the server). A batch of many reads as usual."""
        if not self._single:
            return super().go_on_from(stream_id, version, head)
        self._flush()
        self._versions[stream_id] = version
        self._stream_heads[stream_id] = head  # type: ignore[index]
        return True

    def read_streams(
        self, stream_ids: Sequence[str], from_versions: Mapping[str, int] | None = None
    ) -> dict[str, list[RecordedEvent]]:
        unique = list(dict.fromkeys(stream_ids))
        firsts = [from_versions.get(s, 1) if from_versions else 1 for s in unique]
        found: dict[str, list[RecordedEvent]] = {}
        for row in self._query(
            f"SELECT {', '.join('e.' + c for c in COLUMNS)} FROM events e "
            "JOIN unnest(%s::text[], %s::bigint[]) AS w(stream, first) "
            "ON e.stream_id = w.stream AND e.stream_version >= w.first "
            "ORDER BY e.stream_id, e.stream_version",
            (unique, firsts),
        ):
            event = RecordedEvent.from_row(row)
            found.setdefault(event.stream_id, []).append(event)
        heads = self._stream_heads
        assert heads is not None
        for stream_id, first in zip(unique, firsts, strict=True):
            events = found.get(stream_id)
            if events:
                self._versions[stream_id] = events[-1].stream_version
                heads[stream_id] = events[-1].hash
            elif first <= 1:
                self._versions[stream_id] = 0
                heads[stream_id] = GENESIS
        return found

    def read_states(self, stream_ids: Sequence[str]) -> dict[str, StateRecord]:
        return intact_records(
            self._query(
                f"{SELECT_STATE} WHERE stream_id = ANY(%s)", (list(dict.fromkeys(stream_ids)),)
            )
        )

    def save_state(self, record: StateRecord) -> None:
        self._states[record.stream_id] = record

    def find_by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, list[RecordedEvent]]:
        rows = self._query(
            f"{SELECT_EVENTS} WHERE idempotency_key = ANY(%s) ORDER BY position",
            (list(dict.fromkeys(keys)),),
        )
        return events_by_key(map(RecordedEvent.from_row, rows))

    def _buffer(self, events: list[RecordedEvent]) -> None:
        self._pending += events
        known = self._known
        for event in events:
            key = event.idempotency_key
            if key is not None and key not in self._keys:
                self._keys.setdefault(key, event.stream_id)
            if known is not None:
                known[event.stream_id] = (event.stream_version, event.hash)
        if known is not None and len(self._pending) >= _FILL_ROWS:
            self._flush_rows()

    def _flush_rows(self) -> None:
        """A flush in the middle of a fill: its rows, keeping the round's versions."""
        import psycopg2

        versions = dict(self._versions)
        try:
            self._flush()
        except psycopg2.Error as error:
            raise self._translate(error) from None
        self._versions.update(versions)


def _conflict(error: BaseException) -> WrongExpectedVersion:
    """A unique violation at insert as the contract's conflict: another writer
    committed the same stream version (or used the same key) first."""
    import re

    detail = getattr(getattr(error, "diag", None), "message_detail", None) or ""
    found = re.search(r"=\((.*), (\d+)\) already exists", detail)
    if found:
        version = int(found.group(2))
        return WrongExpectedVersion(found.group(1), version - 1, version)
    conflict = WrongExpectedVersion("", 0, 0)
    conflict.args = ("another writer used the same idempotency key at the same time: retry",)
    return conflict


class PostgresBackend:
    """Journals on a PostgreSQL server: a locator is a postgresql:// URI."""

    def __init__(self) -> None:
        self._spare: tuple[str, PgLocator, connection] | None = None
        """The connection of the last `exists`, kept for the `open` that usually
        follows it (a write asks whether the journal exists before it decides): one
        connection per command, not two."""

    def _connect(self, locator: str) -> tuple[PgLocator, connection]:
        spare, self._spare = self._spare, None
        if spare is not None:
            if spare[0] == locator and not spare[2].closed:
                return spare[1], spare[2]
            spare[2].close()
        where = parse(locator)
        return where, connect(where)

    def _state(self, where: PgLocator, conn: connection) -> str | None:
        """The journal id at `where`, or None if its schema holds no journal yet;
        StorageError if it holds something else, or a journal of a newer version."""
        import psycopg2

        try:
            with conn.cursor() as cur:
                # One round trip when the journal is there (every command but the
                # first); inside a transaction (creating one), a savepoint keeps the
                # missing table's error from aborting it.
                inside = not conn.autocommit
                try:
                    if inside:
                        cur.execute("SAVEPOINT journal_state")
                    cur.execute("SELECT key, value FROM journal_meta")
                    meta_rows = dict(cur.fetchall())
                except psycopg2.errors.UndefinedTable:
                    if inside:
                        cur.execute("ROLLBACK TO SAVEPOINT journal_state")
                    cur.execute(LOOK_AGAIN)
                    events_table, meta_table, barred = cur.fetchone()  # type: ignore[misc]
                    if barred:
                        # The schema is there, but the search path skips a schema the
                        # role may not use: not "no journal yet", which readers would
                        # take for an empty journal.
                        raise StorageError(
                            f"{where.shown}: permission denied for schema {where.schema!r} "
                            "(the role lacks a permission the journal needs)"
                        ) from None
                    if meta_table is not None:
                        # Another writer's creation committed between the two looks
                        # (a first write racing others): it is a journal now.
                        return self._state(where, conn)
                    if events_table is not None:
                        raise StorageError(
                            f"{where.shown}: schema {where.schema!r} holds an events table "
                            "that is not a cqrs journal's"
                        ) from None
                    return None
        except psycopg2.Error as exc:
            raise translate(exc, where) from None
        if meta_rows.get("format") != "cqrs journal" or "journal_id" not in meta_rows:
            raise StorageError(f"{where.shown}: schema {where.schema!r} is not a cqrs journal")
        if int(meta_rows.get("schema_version", "0")) > SCHEMA_VERSION:
            raise StorageError(
                f"{where.shown}: the journal is of a newer cqrs (schema version "
                f"{meta_rows['schema_version']}); upgrade cqrs"
            )
        return str(meta_rows["journal_id"])

    def exists(self, locator: str) -> bool:
        where, conn = self._connect(locator)
        try:
            found = self._state(where, conn) is not None
        except BaseException:
            conn.close()
            raise
        self._spare = (locator, where, conn)
        return found

    def find(self, locator: str) -> PostgresJournal | None:
        where, conn = self._connect(locator)
        journal_id = self._state(where, conn)
        if journal_id is None:
            conn.close()
            return None
        return PostgresJournal(where, conn, journal_id)

    def open(self, locator: str) -> PostgresJournal:
        where, conn = self._connect(locator)
        journal_id = self._state(where, conn)
        if journal_id is None:
            journal_id = self._create(where, conn, None, None)[0]
        return PostgresJournal(where, conn, journal_id)

    def create_from(self, locator: str, journal_id: str, fill: Fill) -> int:
        where, conn = self._connect(locator)
        try:
            if self._state(where, conn) is not None:
                raise UsageError(f"{where.shown}: a journal exists here already")
            return self._create(where, conn, journal_id, fill)[1]
        finally:
            conn.close()

    def _create(
        self, where: PgLocator, conn: connection, journal_id: str | None, fill: Fill | None
    ) -> tuple[str, int]:
        """The schema, its tables and the journal's id in one transaction (DDL is
        transactional here), with `fill` in it too for an import: all or nothing.
        Two creators racing are serialised by an advisory lock; the second finds the
        journal made and uses it (or, for an import, is refused)."""
        import psycopg2

        from ..ids import new_uuid

        stored = 0
        conn.autocommit = False
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, 0))
            found = self._state(where, conn)
            if found is not None:
                if fill is not None:
                    raise UsageError(f"{where.shown}: a journal exists here already")
                conn.rollback()
                return found, 0
            made = journal_id or new_uuid()
            with conn.cursor() as cur:
                cur.execute(CREATE_SCHEMA)
                cur.execute(DDL)
                cur.execute(APPEND_ONE)
                cur.execute(APPEND_EVENT)
                cur.execute(
                    "INSERT INTO journal_meta (key, value) VALUES "
                    "('format', 'cqrs journal'), ('schema_version', %s), ('journal_id', %s)",
                    (str(SCHEMA_VERSION), made),
                )
            if fill is not None:
                journal = PostgresJournal(where, conn, made)
                with PostgresBatch(journal, own_transaction=False, fresh=True) as batch:
                    stored = fill(batch)
            conn.commit()
            return made, stored
        except psycopg2.Error as exc:
            conn.rollback()
            raise translate(exc, where) from None
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.autocommit = True


BACKEND = PostgresBackend()
