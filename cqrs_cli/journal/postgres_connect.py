"""Reaching a PostgreSQL journal: its locator, the driver, and what its errors mean.

A locator is a libpq connection URI, `postgresql://user[:password]@host[:port]/dbname`,
with one parameter of ours: `schema=NAME` (default `cqrs`), the schema that holds the
journal's tables, so that several journals can share one database. Everything else is
libpq's (`sslmode`, `connect_timeout`, `service`, ...), and so are its defaults and
environment (`PGPASSWORD`, `~/.pgpass`, `PGSERVICE`, `PGSSLMODE`): the locator reaches
the same server that `psql` would.

The driver (psycopg2) is imported here, and this module only when a PostgreSQL locator
is used: SQLite commands never pay for it. Driver errors become cqrs's typed errors in
one line, with the locator shown without its password.
"""

from __future__ import annotations

from ..errors import (
    BusyError,
    CqrsError,
    StorageError,
    UnavailableError,
    UsageError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from psycopg2.extensions import connection

SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "cqrs"
_IDENTIFIER = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class PgLocator:
    """A parsed locator: what libpq gets, the schema, and the form fit to show."""

    __slots__ = ("dsn", "password", "schema", "secrets", "shown")

    def __init__(
        self, dsn: str, schema: str, shown: str, password: str | None, secrets: tuple[str, ...] = ()
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.shown = shown
        self.password = password
        self.secrets = tuple(sorted({*secrets, *([password] if password else [])}, key=len))[::-1]
        """Every form of every password in the locator (as written, and decoded), the
        longest first: what translate() hides in the driver's messages, which quote a
        password that libpq cannot decode as it was written."""


def parse(locator: str) -> PgLocator:
    """The parts of a PostgreSQL locator; UsageError (password hidden) if it is not one."""
    from urllib.parse import unquote

    from .redaction import redacted

    shown = redacted(locator)
    # The query starts at the first "?" after the user part (see locator.redacted).
    at = locator.rfind("@")
    query_at = locator.find("?", at + 1 if at >= 0 else 0)
    base, query = (locator, "") if query_at < 0 else (locator[:query_at], locator[query_at + 1 :])
    kept: list[str] = []
    schema = DEFAULT_SCHEMA
    password: str | None = None
    secrets: list[str] = []
    for part in query.split("&") if query else ():
        name, _, value = part.partition("=")
        if name == "schema":
            schema = unquote(value)
        else:
            if name == "password":
                password = unquote(value)
                secrets += [value, password]
            kept.append(part)
    if not schema or len(schema.encode()) > 63 or not set(schema) <= _IDENTIFIER:
        raise UsageError(
            f"{shown}: schema {schema!r} is not a plain name (lower-case letters, digits "
            "and _, at most 63 characters)"
        )
    if schema[0].isdigit() or schema.lower().startswith("pg_"):
        raise UsageError(f"{shown}: schema {schema!r} cannot start with a digit or pg_")
    user = base.partition("://")[2].rpartition("@")[0]
    if ":" in user:
        written = user.partition(":")[2]
        password = unquote(written)
        secrets += [written, password]
    dsn = base + ("?" + "&".join(kept) if kept else "")
    return PgLocator(dsn, schema, shown, password, tuple(s for s in secrets if s))


def driver() -> object:
    """The psycopg2 module; UsageError naming the extra that brings it, if missing."""
    try:
        import psycopg2
    except ImportError:
        raise UsageError(
            "the PostgreSQL journal needs its driver: pip install 'cqrs-cli[postgres]'"
        ) from None
    return psycopg2


def connect(where: PgLocator) -> connection:
    """A new connection to the journal's server, in autocommit mode (readers hold no
    transaction between statements); a typed error in one line if it cannot be made."""
    driver()
    import psycopg2

    try:
        # The schema reaches SQL only as the search path: every statement of the
        # journal names its tables unqualified, and is a constant. No warnings from the
        # server: one that arrives while the connection is being made (a backend told
        # to quit by a crash or an immediate shutdown says why first) is printed on
        # stderr by libpq itself, before psycopg2 takes its messages over, and a
        # failing command's stderr must be its one line.
        conn = psycopg2.connect(
            where.dsn,
            application_name="cqrs",
            options=f"-c search_path={where.schema} -c client_min_messages=error",
        )
    except psycopg2.Error as exc:
        raise translate(exc, where) from None
    conn.autocommit = True
    return conn


# libpq's words for a server that is not there (yet): worth a retry. Anything else at
# connect time (authentication, a missing database or role, pg_hba) is not.
_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "could not translate host name",
    "timeout expired",
    "no such file or directory",
    "server closed the connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "terminating connection",
    "connection to server",
    "network is unreachable",
    "no route to host",
)
_REFUSED = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
)


def translate(exc: BaseException, where: PgLocator) -> CqrsError:
    """A driver error as cqrs's typed error: the server unreachable or the connection
    lost (6, retry), a lock or serialisation timeout (6, retry), or anything the server
    refused (7), in one line with the locator and never the password."""
    import psycopg2

    code = getattr(exc, "pgcode", None) or ""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for secret in where.secrets:
        first = first.replace(secret, "***")
    message = f"{where.shown}: {first}"
    lowered = first.lower()
    if code.startswith("08") or code in ("57P01", "57P02", "57P03"):
        return UnavailableError(f"{message} (the server is unreachable: retry)")
    if code in ("55P03", "40001", "40P01"):
        return BusyError(f"{message} (retry)")
    if code == "42501":
        return StorageError(f"{message} (the role lacks a permission the journal needs)")
    if code.startswith("53"):
        return StorageError(f"{message} (the server is out of resources)")
    if isinstance(exc, psycopg2.InterfaceError):
        return UnavailableError(f"{where.shown}: the connection to the server was lost: retry")
    if isinstance(exc, psycopg2.OperationalError) and not code:
        if any(word in lowered for word in _REFUSED):
            return StorageError(message)
        if any(word in lowered for word in _UNREACHABLE):
            return UnavailableError(f"{message} (the server is unreachable: retry)")
        return UnavailableError(f"{message} (retry)")
    return StorageError(message)
