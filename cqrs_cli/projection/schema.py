"""The projection file's own shape: its markers and the bookkeeping tables every view's
checkpoint and the projection's provenance live in.

Each view's tables are its own module's (cqrs_cli/views/). All of it is documented in
the README ("The projection file") so that people can open the file with sqlite3,
sqlite-utils or Datasette.
"""

from __future__ import annotations

from ..sqlitefile import PROJECTION_APP_ID, FileSpec

SCHEMA_VERSION = 1
SPEC = FileSpec("cqrs projection", PROJECTION_APP_ID, SCHEMA_VERSION)

BOOKKEEPING = """
CREATE TABLE projection_meta (
    key   TEXT PRIMARY KEY,            -- journal_id, last_sync_at
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE projection_views (
    view       TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    checkpoint INTEGER NOT NULL,       -- the last journal position applied (never a count)
    updated_at TEXT
) WITHOUT ROWID;
"""
