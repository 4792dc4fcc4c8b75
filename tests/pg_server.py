"""A PostgreSQL server of the tests' own, in a temporary folder, on a free loopback port.

Made from the server binaries on the machine (`pg_config --bindir`, or initdb on PATH).
initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user.
Where there are no binaries, the PostgreSQL tests skip with the reason, unless
CQRS_REQUIRE_POSTGRES=1 (set by .ci/run), which turns the skip into a failure: CI
always runs them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRED = os.environ.get("CQRS_REQUIRE_POSTGRES") == "1"


def _bindir() -> Path | None:
    config = shutil.which("pg_config")
    if config is not None:
        found = subprocess.run([config, "--bindir"], capture_output=True, text=True)
        folder = Path(found.stdout.strip())
        if (folder / "initdb").exists():
            return folder
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    # Debian keeps the server's binaries off PATH, one folder per major version.
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def unavailable(reason: str) -> None:
    """Skip, or fail where PostgreSQL is required."""
    if REQUIRED:
        pytest.fail(f"PostgreSQL is required here (CQRS_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One server: `start`, `stop` (fast or a crash), `url(schema)`."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            unavailable("no PostgreSQL server binaries (initdb) on this machine")
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            unavailable("psycopg2 is not installed (pip install 'cqrs-cli[postgres]')")
        assert bindir is not None
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="cqrs-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no postgres user to run initdb as")
            self._user = "postgres"
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                "\nlisten_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.folder}'\n"
                "max_connections = 200\n"
                "fsync = on\n"
            )

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / tool), *args]
        if self._user is not None:
            argv = ["su", self._user, "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in argv)]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=self.folder)
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")
        return done

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "fast" (a clean shutdown) or "immediate" (a crash: no
        checkpoint, recovery from the WAL at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def url(self, schema: str | None = None, database: str = "postgres") -> str:
        base = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return f"{base}?schema={schema}" if schema else base

    def new_schema_url(self) -> str:
        """The locator of a new, empty journal on this server."""
        return self.url(f"t_{uuid.uuid4().hex[:12]}")

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        import psycopg2

        conn = psycopg2.connect(self.url(database=database))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def wait_until_up(server: PgServer, timeout: float = 30) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(server.url()).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def running_server() -> Iterator[PgServer]:
    """A new server, started and answering; removed at the end, whatever state it is in."""
    server = PgServer()
    try:
        server.start()
        wait_until_up(server)
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's shared server (tests that crash or restart one make their own:
    `running_server`)."""
    with running_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The locator of a new, empty journal (a schema of its own) on the shared server."""
    return pg_server.new_schema_url()
