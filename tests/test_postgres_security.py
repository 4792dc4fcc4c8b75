"""Guarantee 6 of the PostgreSQL journal: security.

A server of this module's own, whose pg_hba asks three roles for a password
(scram-sha-256) before its trust line: `secret_user` (may create schemas),
`limited_user` (may connect, nothing more) and `reader_user` (may read one journal).
Checked, each through `cqrs` processes:

- the password never appears in any output: messages, `status`, `--json`, `--debug`
  (and CQRS_DEBUG=1) output, a traceback under `--debug`, the store's files; whether it
  is in the locator's user part, in `?password=`, or written with percent escapes libpq
  cannot decode;
- refused connection, failed authentication, missing database, missing permissions:
  one line each, exit 6 (retry) or 7;
- libpq's own ways to give a password or a server work as they do for psql:
  PGPASSWORD, ~/.pgpass, PGSERVICE with PGSERVICEFILE;
- an unknown scheme is refused (exit 2) and creates nothing; without the driver, one
  line names the extra that brings it; SQLite commands never import the driver.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from common import child_env, one_error_line, run_cqrs
from pg_server import PgServer, wait_until_up

PASSWORD = "Sekr1t:p@ss/w?rd#8472"
"""secret_user's password: characters a URL must escape, so that its written form
(ENCODED) and its decoded form differ."""
ENCODED = quote(PASSWORD, safe="")
CORE = "Sekr1t"
"""In every form of the password: absent from an output, no form of it is there."""
LIMITED_PASSWORD = "L1mited-Sekr1t-pw"
READER_PASSWORD = "Re4der-Sekr1t-pw"

ROLES = ("secret_user", "limited_user", "reader_user")


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    """A server of this module's own: its pg_hba is edited, which the shared one's
    users would not expect."""
    server = PgServer()
    hba = server.data / "pg_hba.conf"
    asked = "".join(f"host all {role} 127.0.0.1/32 scram-sha-256\n" for role in ROLES)
    hba.write_text(asked + hba.read_text())  # first match wins: before the trust lines
    try:
        server.start()
        wait_until_up(server)
        server.sql(f"CREATE ROLE secret_user LOGIN PASSWORD '{PASSWORD}'")
        server.sql("GRANT CREATE ON DATABASE postgres TO secret_user")
        server.sql(f"CREATE ROLE limited_user LOGIN PASSWORD '{LIMITED_PASSWORD}'")
        server.sql(f"CREATE ROLE reader_user LOGIN PASSWORD '{READER_PASSWORD}'")
        yield server
    finally:
        server.remove()


_schemas = iter(range(1, 1_000_000))


def new_schema() -> str:
    return f"sec_{os.getpid()}_{next(_schemas)}"


def locator(
    server: PgServer,
    schema: str,
    *,
    user: str = "secret_user",
    password: str | None = ENCODED,
    database: str = "postgres",
    port: int | None = None,
) -> str:
    userinfo = user if password is None else f"{user}:{password}"
    return f"postgresql://{userinfo}@127.0.0.1:{port or server.port}/{database}?schema={schema}"


def cqrs(
    cqrs_exe: str, home: Path, journal: str, *argv: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = child_env(home, CQRS_CATCHUP="0", CQRS_JOURNAL=journal, **extra)
    return run_cqrs(cqrs_exe, *argv, env=env, text=True)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for form in (PASSWORD, ENCODED, CORE):
            assert form not in text, text


def files_hold_no_secret(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert CORE.encode() not in path.read_bytes(), path


# --- The right password: it works, and never shows --------------------------------------------


def test_the_right_password_works_and_no_output_shows_it(
    server: PgServer, cqrs_exe: str, store: Path
) -> None:
    journal = locator(server, new_schema())
    shown = journal.replace(ENCODED, "***")
    commands: list[tuple[str, ...]] = [
        ("sync",),  # no journal yet: says so, with the locator
        ("status",),
        ("item", "create", "A", "-d", "first"),
        ("item", "create", "B", "--json"),
        ("item", "update", "A", "second", "--json"),
        ("item", "get", "A", "--sync"),
        ("--debug", "item", "get", "A", "--json"),
        ("item", "list", "--json"),
        ("item", "history", "A", "--json"),
        ("events",),
        ("events", "--stream", "A"),
        ("sync", "--rebuild", "--json"),
        ("status",),
        ("status", "--json"),
        ("--debug", "status", "--json"),
        ("journal", "verify"),
        ("journal", "verify", "--json"),
        ("journal", "export"),
        ("item", "delete", "B", "--dry-run", "--json"),
    ]
    for argv in commands:
        done = cqrs(cqrs_exe, store, journal, *argv)
        assert done.returncode == 0, (argv, done.stderr)
        assert_no_secret(done.stdout, done.stderr)
    status = cqrs(cqrs_exe, store, journal, "status", CQRS_DEBUG="1")
    assert f"journal:     {shown} (head position 3)" in status.stdout
    assert_no_secret(status.stdout, status.stderr)
    files_hold_no_secret(store)


def test_a_password_given_as_a_parameter_is_hidden_too(
    server: PgServer, cqrs_exe: str, store: Path
) -> None:
    schema = new_schema()
    journal = (
        f"postgresql://secret_user@127.0.0.1:{server.port}/postgres"
        f"?password={ENCODED}&schema={schema}"
    )
    for argv in (("item", "create", "A"), ("status",), ("status", "--json"), ("sync",)):
        done = cqrs(cqrs_exe, store, journal, *argv)
        assert done.returncode == 0, (argv, done.stderr)
        assert_no_secret(done.stdout, done.stderr)
    status = cqrs(cqrs_exe, store, journal, "status")
    assert f"?password=***&schema={schema} (head position 1)" in status.stdout


@pytest.mark.parametrize("where", ["user part", "parameter"])
def test_a_password_libpq_cannot_decode_is_not_quoted_back(
    server: PgServer, cqrs_exe: str, store: Path, where: str
) -> None:
    """libpq quotes an undecodable password in its message as it was written; the
    decoded form (`%41` -> `A`) is not that text."""
    written = f"{CORE}%41-%zz"
    base = f"127.0.0.1:{server.port}/postgres"
    journal = (
        f"postgresql://secret_user:{written}@{base}?schema=s"
        if where == "user part"
        else f"postgresql://secret_user@{base}?schema=s&password={written}"
    )
    for debug in ((), ("--debug",)):
        done = cqrs(cqrs_exe, store, journal, *debug, "item", "create", "A")
        assert done.returncode == 7, done.stderr
        line = one_error_line(done.stderr)
        assert "percent-encoded" in line
        assert_no_secret(line, done.stdout)


def test_the_journal_tools_never_show_the_password(
    server: PgServer, cqrs_exe: str, store: Path, tmp_path: Path
) -> None:
    source, target = locator(server, new_schema()), locator(server, new_schema())
    for item in ("A", "B"):
        made = cqrs(cqrs_exe, store, source, "item", "create", item)
        assert made.returncode == 0, made.stderr
    export = cqrs(cqrs_exe, store, source, "journal", "export")
    assert export.returncode == 0, export.stderr
    env = child_env(store, CQRS_CATCHUP="0", CQRS_JOURNAL=target)
    for expected in (0, 2):  # the second import finds a journal there already
        imported = run_cqrs(
            cqrs_exe, "journal", "import", "-", stdin=export.stdout.encode(), env=env, text=True
        )
        assert imported.returncode == expected, imported.stderr
        assert_no_secret(imported.stdout, imported.stderr)
        if expected:
            assert "already" in one_error_line(imported.stderr)
        else:
            assert target.replace(ENCODED, "***") in imported.stderr
    backup = cqrs(cqrs_exe, store, target, "journal", "backup", str(tmp_path / "copy.db"))
    assert backup.returncode == 2, backup.stderr
    assert "export" in one_error_line(backup.stderr)
    assert_no_secret(backup.stdout, backup.stderr)
    empty = locator(server, new_schema())
    for argv in (("journal", "verify"), ("journal", "export")):
        done = cqrs(cqrs_exe, store, empty, *argv)
        assert done.returncode == 7, (argv, done.stderr)
        assert "no journal here" in one_error_line(done.stderr)
        assert_no_secret(done.stdout, done.stderr)
    assert not (tmp_path / "copy.db").exists()


# --- Failures: one line each, a documented exit code, no password -----------------------------


def test_a_wrong_password_is_one_line_exit_7(server: PgServer, cqrs_exe: str, store: Path) -> None:
    wrong = quote(f"{CORE}-wrong", safe="")
    journal = locator(server, new_schema(), password=wrong)
    for argv in (("item", "create", "A"), ("--debug", "events"), ("status", "--json")):
        done = cqrs(cqrs_exe, store, journal, *argv)
        assert done.returncode == 7, (argv, done.stderr)
        line = one_error_line(done.stderr)
        assert "password authentication failed" in line
        assert "secret_user:***@" in line
        assert_no_secret(line, done.stdout)
    assert not store.exists() or not any(store.iterdir())


def test_a_refused_connection_is_one_line_exit_6(
    server: PgServer, cqrs_exe: str, store: Path
) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on (bound, never listening)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        journal = locator(server, "s", port=port)
        for argv in (("item", "create", "A"), ("--debug", "sync"), ("events",)):
            done = cqrs(cqrs_exe, store, journal, *argv)
            assert done.returncode == 6, (argv, done.stderr)
            line = one_error_line(done.stderr)
            assert "Connection refused" in line and line.rstrip().endswith("retry)"), line
            assert_no_secret(line, done.stdout)


def test_a_missing_database_is_one_line_exit_7(
    server: PgServer, cqrs_exe: str, store: Path
) -> None:
    journal = locator(server, "s", database="no_such_db")
    for argv in (("item", "create", "A"), ("--debug", "status")):
        done = cqrs(cqrs_exe, store, journal, *argv)
        assert done.returncode == 7, (argv, done.stderr)
        line = one_error_line(done.stderr)
        assert 'database "no_such_db" does not exist' in line
        assert_no_secret(line, done.stdout)


def test_a_role_that_may_not_create_a_schema_cannot_start_a_journal(
    server: PgServer, cqrs_exe: str, store: Path
) -> None:
    journal = locator(server, new_schema(), user="limited_user", password=LIMITED_PASSWORD)
    done = cqrs(cqrs_exe, store, journal, "item", "create", "A")
    assert done.returncode == 7, done.stderr
    line = one_error_line(done.stderr)
    assert "permission denied for database" in line
    assert LIMITED_PASSWORD not in line and "limited_user:***@" in line


def test_a_role_without_access_to_the_schema_is_refused_not_shown_an_empty_journal(
    server: PgServer, cqrs_exe: str, store: Path
) -> None:
    """The search path skips a schema the role may not use: without a look at why the
    journal's tables are not found, a reader would sync "nothing" from a full journal."""
    schema = new_schema()
    made = cqrs(cqrs_exe, store, locator(server, schema), "item", "create", "A")
    assert made.returncode == 0, made.stderr
    journal = locator(server, schema, user="limited_user", password=LIMITED_PASSWORD)
    for argv in (("sync",), ("events",), ("status",), ("item", "create", "B")):
        done = cqrs(cqrs_exe, store, journal, *argv)
        assert done.returncode == 7, (argv, done.stdout, done.stderr)
        line = one_error_line(done.stderr)
        assert f"permission denied for schema '{schema}'" in line, line
        assert LIMITED_PASSWORD not in line


def test_a_role_that_may_only_read_reads_and_cannot_write(
    server: PgServer, cqrs_exe: str, store: Path
) -> None:
    schema = new_schema()
    made = cqrs(cqrs_exe, store, locator(server, schema), "item", "create", "A")
    assert made.returncode == 0, made.stderr
    server.sql(f"GRANT USAGE ON SCHEMA {schema} TO reader_user")
    server.sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO reader_user")
    journal = locator(server, schema, user="reader_user", password=READER_PASSWORD)
    synced = cqrs(cqrs_exe, store, journal, "sync")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout == "Synced 1 event (position 0 -> 1)\n"
    done = cqrs(cqrs_exe, store, journal, "item", "create", "B")
    assert done.returncode == 7, done.stderr
    line = one_error_line(done.stderr)
    assert "permission denied for" in line, line
    assert READER_PASSWORD not in line


# --- libpq's ways to give a password or a server ----------------------------------------------


def test_pgpassword_gives_the_password(server: PgServer, cqrs_exe: str, store: Path) -> None:
    journal = locator(server, new_schema(), password=None)
    without = cqrs(cqrs_exe, store, journal, "item", "create", "A")
    assert without.returncode == 7, without.stderr
    assert "no password supplied" in one_error_line(without.stderr)
    done = cqrs(cqrs_exe, store, journal, "item", "create", "A", PGPASSWORD=PASSWORD)
    assert done.returncode == 0, done.stderr
    status = cqrs(cqrs_exe, store, journal, "status", "--json", PGPASSWORD=PASSWORD)
    assert status.returncode == 0, status.stderr
    assert_no_secret(done.stdout, done.stderr, status.stdout, status.stderr)


def test_a_pgpass_file_in_home_gives_the_password(
    server: PgServer, cqrs_exe: str, store: Path, tmp_path: Path
) -> None:
    home = tmp_path / "pg-user-home"
    home.mkdir()
    pgpass = home / ".pgpass"
    escaped = PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    pgpass.write_text(f"127.0.0.1:{server.port}:postgres:secret_user:{escaped}\n")
    pgpass.chmod(0o600)  # libpq ignores a file others may read
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    journal = locator(server, new_schema(), password=None)
    done = cqrs(cqrs_exe, store, journal, "item", "create", "A", HOME=str(home))
    assert done.returncode == 0, done.stderr
    read = cqrs(cqrs_exe, store, journal, "events", HOME=str(home))
    assert read.returncode == 0 and '"stream_id": "A"' in read.stdout, read.stderr
    assert_no_secret(done.stdout, done.stderr, read.stdout, read.stderr)


def test_a_service_file_names_the_server_and_the_password(
    server: PgServer, cqrs_exe: str, store: Path, tmp_path: Path
) -> None:
    services = tmp_path / "pg_service.conf"
    services.write_text(
        "[cqrs_journal]\n"
        f"host=127.0.0.1\nport={server.port}\ndbname=postgres\n"
        f"user=secret_user\npassword={PASSWORD}\n"
    )
    schema = new_schema()
    by_variable = f"postgresql:///?schema={schema}"
    env = {"PGSERVICE": "cqrs_journal", "PGSERVICEFILE": str(services)}
    done = cqrs(cqrs_exe, store, by_variable, "item", "create", "A", **env)
    assert done.returncode == 0, done.stderr
    by_parameter = f"postgresql://?service=cqrs_journal&schema={schema}"
    env = {"PGSERVICEFILE": str(services)}
    status = cqrs(cqrs_exe, store, by_parameter, "status", **env)
    assert status.returncode == 0, status.stderr
    assert f"journal:     {by_parameter} (head position 1)" in status.stdout
    assert_no_secret(done.stdout, done.stderr, status.stdout, status.stderr)


# --- Locators and the driver ------------------------------------------------------------------


def test_an_unknown_scheme_is_refused_and_creates_nothing(
    cqrs_exe: str, store: Path, tmp_path: Path
) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    for argv in (("item", "create", "A"), ("sync",), ("status",), ("events",)):
        done = subprocess.run(
            [cqrs_exe, "--journal", f"mysql://u:{CORE}@h/db", *argv],
            capture_output=True,
            text=True,
            cwd=here,
            env=child_env(store, CQRS_CATCHUP="0"),
        )
        assert done.returncode == 2, (argv, done.stderr)
        line = one_error_line(done.stderr)
        assert "unknown journal scheme 'mysql'" in line and "mysql://u:***@h/db" in line
        assert_no_secret(done.stdout, line)
    assert list(here.iterdir()) == []
    assert not store.exists() or not any(store.iterdir())


BLOCK_DRIVER = "import sys; sys.modules['psycopg2'] = None\n"
"""As if psycopg2 were not installed: `import psycopg2` raises ImportError."""


def test_without_the_driver_one_line_names_the_extra(server: PgServer, store: Path) -> None:
    journal = locator(server, new_schema())
    script = BLOCK_DRIVER + "from cqrs_cli.cli.main import main; main()"
    for argv in (("item", "create", "A"), ("--debug", "sync"), ("status", "--json")):
        done = subprocess.run(
            [sys.executable, "-c", script, *argv],
            capture_output=True,
            text=True,
            env=child_env(store, CQRS_CATCHUP="0", CQRS_JOURNAL=journal),
        )
        assert done.returncode == 2, (argv, done.stderr)
        line = one_error_line(done.stderr)
        assert "pip install 'cqrs-cli[postgres]'" in line
        assert_no_secret(done.stdout, line)


SQLITE_COMMANDS = """
import sys
from cqrs_cli.cli.main import run
codes = [
    run(["item", "create", "A", "-d", "x"]),
    run(["item", "update", "A", "y"]),
    run(["item", "get", "A", "--sync"]),
    run(["item", "list"]),
    run(["events"]),
    run(["status", "--json"]),
    run(["sync", "--rebuild"]),
    run(["journal", "verify"]),
]
loaded = sorted(  # a module blocked as missing is None there
    m for m, module in sys.modules.items()
    if module is not None and ("psycopg" in m or "postgres" in m)
)
print(codes, loaded, file=sys.stderr)
sys.exit(1 if any(codes) or loaded else 0)
"""


@pytest.mark.parametrize("blocked", [False, True], ids=["driver-installed", "driver-missing"])
def test_sqlite_commands_never_import_the_driver(store: Path, blocked: bool) -> None:
    script = (BLOCK_DRIVER if blocked else "") + SQLITE_COMMANDS
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=child_env(store, CQRS_CATCHUP="0"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.rstrip().endswith("[0, 0, 0, 0, 0, 0, 0, 0] []"), done.stderr


def test_the_installed_command_on_sqlite_does_not_import_the_driver(
    store: Path, cqrs_exe: str
) -> None:
    env = child_env(store, CQRS_CATCHUP="0", PYTHONPROFILEIMPORTTIME="1")
    for argv in (("item", "create", "A"), ("item", "get", "A", "--sync")):
        done = run_cqrs(cqrs_exe, *argv, env=env, text=True)
        assert done.returncode == 0, done.stderr
        assert "import time:" in done.stderr  # the imports are listed, and none is it
        assert "psycopg2" not in done.stderr and "postgres" not in done.stderr


# --- --debug: a traceback shows no password ---------------------------------------------------

INJECTED_BUG = """
import sys
from cqrs_cli.journal import postgres_journal

def broken(self, *args, **kwargs):
    raise RuntimeError("an injected bug in the journal")

postgres_journal.PostgresJournal.head = broken
from cqrs_cli.cli.main import main
main()
"""


@pytest.mark.parametrize(
    "argv",
    [("--debug", "status"), ("--debug", "sync"), ("--debug", "events", "--follow")],
)
def test_a_traceback_under_debug_shows_no_password(
    server: PgServer, store: Path, cqrs_exe: str, argv: tuple[str, ...]
) -> None:
    journal = locator(server, new_schema())
    made = cqrs(cqrs_exe, store, journal, "item", "create", "A")
    assert made.returncode == 0, made.stderr
    done = subprocess.run(
        [sys.executable, "-c", INJECTED_BUG, *argv],
        capture_output=True,
        text=True,
        env=child_env(store, CQRS_CATCHUP="0", CQRS_JOURNAL=journal),
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" in done.stderr and "an injected bug in the journal" in done.stderr
    assert_no_secret(done.stdout, done.stderr)
    plain = subprocess.run(
        [sys.executable, "-c", INJECTED_BUG, *argv[1:]],
        capture_output=True,
        text=True,
        env=child_env(store, CQRS_CATCHUP="0", CQRS_JOURNAL=journal),
        timeout=60,
    )
    assert plain.returncode == 1
    line = one_error_line(plain.stderr, "cqrs: unexpected error: ")
    assert_no_secret(plain.stdout, line)
