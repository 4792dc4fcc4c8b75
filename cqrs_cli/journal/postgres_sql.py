"""The SQL of the journal on PostgreSQL (postgres_journal.py): its tables and
functions, and the statements of its batches, reads and notices. Every statement is a
constant: values travel as bound parameters, and the schema's name only as the
connection's search_path (postgres_connect.connect).
"""

from __future__ import annotations

from .records import BUILD_COLUMNS, COLUMNS

LOCK_CLASS = 0x63717273
"""The first key of the journal's advisory locks ("cqrs"); the second is the schema's."""

DDL = """
CREATE TABLE journal_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE events (
    position        bigint  PRIMARY KEY,
    -- The writing transaction: readers read only below the oldest open one.
    tx_id           xid8    NOT NULL DEFAULT pg_current_xact_id(),
    event_id        text    NOT NULL,
    stream_id       text    NOT NULL,
    stream_version  bigint  NOT NULL CHECK (stream_version >= 1),
    event_type      text    NOT NULL,
    schema_version  integer NOT NULL,
    data            text    NOT NULL,
    recorded_at     text    NOT NULL,
    command_id      text    NOT NULL,
    idempotency_key text,
    correlation_id  text,
    prev_hash       text    NOT NULL,
    hash            text    NOT NULL,
    CONSTRAINT events_event_id_unique UNIQUE (event_id),
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_by_idempotency_key ON events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE idempotency_keys (
    key       text PRIMARY KEY,
    stream_id text NOT NULL
);
CREATE TABLE stream_states (
    stream_id text   PRIMARY KEY,
    version   bigint NOT NULL,
    hash      text   NOT NULL,
    data      text   NOT NULL,
    checksum  text   NOT NULL
);
CREATE SEQUENCE positions AS bigint;
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER journal_meta_fixed BEFORE UPDATE OR DELETE ON journal_meta
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
"""
APPEND_ONE = """
-- A command's events (SINGLE; APPEND_EVENT for a command of one event): the
-- reservation lock taken and given back here, in the server, around the insert that
-- hands out positions and assigns the transaction id. A function, so that its
-- statements are planned once per connection, not per write.
CREATE OR REPLACE FUNCTION append_one(
    k1 int, k2 int, event_ids text[], stream_ids text[], versions bigint[],
    types text[], schemas int[], datas text[], times text[], commands text[],
    keys text[], correlations text[], prevs text[], hashes text[],
    new_keys text[], key_streams text[], state_streams text[], state_versions bigint[],
    state_hashes text[], state_datas text[], state_sums text[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
BEGIN
    PERFORM pg_advisory_lock(k1, k2);
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO last
        FROM positions;
    INSERT INTO events (position, event_id, stream_id, stream_version, event_type,
        schema_version, data, recorded_at, command_id, idempotency_key, correlation_id,
        prev_hash, hash)
    SELECT last + r.n, r.e, r.s, r.v, r.t, r.sv, r.d, r.a, r.c, r.k, r.co, r.p, r.h
    FROM unnest(event_ids, stream_ids, versions, types, schemas, datas, times, commands,
        keys, correlations, prevs, hashes) WITH ORDINALITY
        AS r(e, s, v, t, sv, d, a, c, k, co, p, h, n);
    IF cardinality(new_keys) > 0 THEN
        INSERT INTO idempotency_keys (key, stream_id) SELECT * FROM unnest(new_keys, key_streams);
    END IF;
    IF cardinality(state_streams) > 0 THEN
        INSERT INTO stream_states (stream_id, version, hash, data, checksum)
        SELECT * FROM unnest(state_streams, state_versions, state_hashes, state_datas,
            state_sums)
        ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version,
            hash = excluded.hash, data = excluded.data, checksum = excluded.checksum;
    END IF;
    PERFORM setval('positions', last + cardinality(event_ids));
    PERFORM pg_advisory_unlock(k1, k2);
    RETURN last + cardinality(event_ids);
END $$;
"""
APPEND_EVENT = """
CREATE OR REPLACE FUNCTION append_event(
    k1 int, k2 int, new_event_id text, new_stream_id text, new_version bigint,
    new_type text, new_schema int, new_data text, new_recorded_at text,
    new_command_id text, new_key text, new_correlation_id text, new_prev_hash text,
    new_hash text, new_state text, new_state_checksum text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    taken bigint;
BEGIN
    PERFORM pg_advisory_lock(k1, k2);
    -- In flight from here to COMMIT, as an insert would be (WRITES_IN_FLIGHT): the
    -- lock the insert takes anyway, taken before the reservation is given back.
    LOCK TABLE events IN ROW EXCLUSIVE MODE;
    PERFORM pg_current_xact_id();
    taken := nextval('positions');
    PERFORM pg_advisory_unlock(k1, k2);
    INSERT INTO events (position, event_id, stream_id, stream_version, event_type,
        schema_version, data, recorded_at, command_id, idempotency_key, correlation_id,
        prev_hash, hash)
    VALUES (taken, new_event_id, new_stream_id, new_version, new_type, new_schema,
        new_data, new_recorded_at, new_command_id, new_key, new_correlation_id,
        new_prev_hash, new_hash);
    IF new_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (key, stream_id) VALUES (new_key, new_stream_id);
    END IF;
    IF new_state IS NOT NULL THEN
        INSERT INTO stream_states (stream_id, version, hash, data, checksum)
        VALUES (new_stream_id, new_version, new_hash, new_state, new_state_checksum)
        ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version,
            hash = excluded.hash, data = excluded.data, checksum = excluded.checksum;
    END IF;
    RETURN taken;
END $$;
"""
"""The function of SINGLE_EVENT, one command's one event: most writes. Its arguments
are scalars (parsing append_one's twenty array literals was a sixth of a write's time
on the server), and the reservation lock is held only while this transaction's id and
the event's position are taken, not through the insert. An insert refused there
(another writer's version or key) leaves a gap in positions, which readers allow.
Made with the tables, and by the first single write to a journal made before it
(PostgresBatch._install_append_event)."""

SELECT_EVENTS = f"SELECT {', '.join(COLUMNS)} FROM events"
SELECT_STATE = "SELECT stream_id, version, hash, data, checksum FROM stream_states"
CREATE_SCHEMA = (
    # The schema's name reaches SQL only through the connection's search_path
    # (postgres_connect.connect), never spliced into a statement.
    "DO $$ BEGIN EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', "
    "current_setting('search_path')); END $$"
)
RESERVE = (
    # A batch of many commands, before its first read. It names itself while it holds
    # the lock: single writers then wait for it.
    "SET LOCAL application_name = 'cqrs batch'; "
    "SET LOCAL lock_timeout = %s; SELECT pg_advisory_lock(%s, %s); "
    "SELECT last_value, is_called FROM positions, pg_current_xact_id()"
)
WRITES_IN_FLIGHT = (
    # The other transactions that have inserted into this journal's events, or are
    # about to (append_event takes the insert's lock before it gives the reservation
    # back; append_one and batches insert while they hold it), and have not ended: what
    # a batch that holds the reservation waits for before it reads, since a write
    # committed after the batch read its item would fail the batch at its insert. No
    # new one can start meanwhile: they all take the reservation first. (pg_locks is
    # readable by every role.)
    "SELECT count(*) FROM pg_locks WHERE locktype = 'relation' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND relation = 'events'::regclass AND mode = 'RowExclusiveLock' AND granted "
    "AND pid <> pg_backend_pid()"
)
FLUSH = (
    "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, "
    "schema_version, data, recorded_at, command_id, idempotency_key, correlation_id, "
    "prev_hash, hash) SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], "
    "%s::bigint[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[]); "
    "INSERT INTO idempotency_keys (key, stream_id) SELECT * FROM unnest(%s::text[], %s::text[]); "
    "INSERT INTO stream_states (stream_id, version, hash, data, checksum) "
    "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[]) "
    "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, "
    "hash = excluded.hash, data = excluded.data, checksum = excluded.checksum"
)
FLUSH_AND_RELEASE = (
    FLUSH + "; SELECT setval('positions', greatest(%s, (SELECT last_value FROM positions))); "
    "SELECT pg_advisory_unlock(%s, %s)"
)
SINGLE = (
    # One command's events, in one round trip from the client: the reservation lock is
    # taken and given back inside the server (append_one, in DDL), around the insert
    # that hands out positions (after the transaction id: the insert assigns it), so a
    # writer descheduled between two round trips cannot hold up the others. Then
    # COMMIT, and the followers' notice in a transaction of its own that does not wait
    # for its flush to disk (a NOTIFY holds a cluster-wide lock through its commit).
    "BEGIN; SET LOCAL lock_timeout = %s; SELECT append_one(%s, %s, %s::text[], %s::text[], "
    "%s::bigint[], %s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[], "
    "%s::text[], %s::text[], %s::text[]); COMMIT; "
    "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_notify(%s, %s); COMMIT; "
    "SELECT currval('positions')"  # append_one's setval: the last position taken
)
SINGLE_EVENT = (
    # SINGLE for a command of one event, its key and its state record (APPEND_EVENT).
    "BEGIN; SET LOCAL lock_timeout = %s; SELECT append_event(%s, %s, %s, %s, %s, %s, %s, "
    "%s, %s, %s, %s, %s, %s, %s, %s, %s); COMMIT; "
    "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_notify(%s, %s); COMMIT; "
    "SELECT currval('positions')"  # append_event's nextval: its event's position
)
NOTIFY = "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_notify(%s, %s); COMMIT"
HELD_BY_A_BATCH = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
    "AND l.classid::bigint = (%s::bigint & 4294967295) "
    "AND l.objid::bigint = (%s::bigint & 4294967295) "
    "AND a.application_name = 'cqrs batch')"
)
CHANNEL = "cqrs_journal"
"""The NOTIFY channel of every journal; the payload names the schema."""
VISIBLE = "tx_id < pg_snapshot_xmin(pg_current_snapshot())"
SELECT_FOR_BUILD = (
    f"SELECT {', '.join(BUILD_COLUMNS)} FROM events WHERE position > %s AND position <= %s "
    f"AND {VISIBLE} ORDER BY position LIMIT %s"
)
LOOK_AGAIN = (
    # After journal_meta was not found: the tables as they are now, and whether the
    # schema exists but the role has no USAGE on it (the search path then skips it).
    "SELECT to_regclass('events'), to_regclass('journal_meta'), "
    "(SELECT NOT has_schema_privilege(oid, 'USAGE') FROM pg_namespace "
    "WHERE nspname = current_setting('search_path'))"
)
