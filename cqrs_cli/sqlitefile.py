"""Opening, recognising and creating the SQLite files cqrs owns (journal and projection).

Rules measured on this machine (docs/architecture.md, Storage rules 1, 3, 5-7):
- a text file opens without error and fails at the first query, and an empty file is
  silently taken as a new database: so an existing file's header is read and checked
  *before* SQLite touches it, and a file that is not ours is left byte for byte alone;
- a new file is built complete under a temporary name and then hard-linked into place,
  so that no process ever sees a half-initialised file, and two processes creating the
  same file at once end up sharing one;
- connections use `isolation_level=None` (we issue BEGIN IMMEDIATE ourselves) and a
  busy timeout of 5 s by default (1 s still gave lock errors with 8 writers here);
- a file on a medium nobody can write is read as immutable, and only such a file
  (docs/architecture.md, Storage rule 12).
"""

from __future__ import annotations

import os
import sqlite3
import stat

from .errors import BusyError, CqrsError, StorageError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

SQLITE_MAGIC = b"SQLite format 3\x00"
JOURNAL_APP_ID = 0x43515253  # "CQRS"
PROJECTION_APP_ID = 0x43515250  # "CQRP"
KIND_BY_APP_ID = {JOURNAL_APP_ID: "cqrs journal", PROJECTION_APP_ID: "cqrs projection"}

DEFAULT_BUSY_TIMEOUT = 5.0


def busy_timeout() -> float:
    """Seconds to wait for a lock, from CQRS_BUSY_TIMEOUT (default 5)."""
    return _seconds("CQRS_BUSY_TIMEOUT", DEFAULT_BUSY_TIMEOUT)


def _seconds(variable: str, default: float) -> float:
    raw = os.environ.get(variable)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 86400:
        raise UsageError(f"{variable}={raw!r} is not a number of seconds")
    return value


DEFAULT_SYNC_LOCK_TIMEOUT = 600.0


def sync_lock_timeout() -> float:
    """Seconds a sync waits for another sync to release the projection, from
    CQRS_SYNC_TIMEOUT (default 600: a rebuild of millions of events takes a while)."""
    return _seconds("CQRS_SYNC_TIMEOUT", DEFAULT_SYNC_LOCK_TIMEOUT)


class FileSpec:
    """What one kind of cqrs file looks like: its name, application id, schema version."""

    __slots__ = ("app_id", "kind", "schema_version")

    def __init__(self, kind: str, app_id: int, schema_version: int) -> None:
        self.kind = kind
        self.app_id = app_id
        self.schema_version = schema_version


class _Held:
    """Descriptors kept open on a file that SQLite connections of this process use."""

    __slots__ = ("fds", "users")

    def __init__(self, fd: int) -> None:
        self.fds = [fd]
        self.users = 0


_HELD: dict[tuple[int, int], _Held] = {}
"""(device, inode) -> descriptor, for the files our connections have open.

Closing any descriptor of a file drops every POSIX lock the process holds on it,
SQLite's included (sqlite.org/howtocorrupt.html, 2.2). Reading a header with
open()/close() while a connection of this process has the file open would let another
process take itself for the file's last user, checkpoint over pages still in use and
delete the WAL: acknowledged events were lost that way. So while our connections use a
file, its header is read with pread() on a descriptor held open until the last of them
closes; otherwise it is read with a plain open()."""


def retain(path: str) -> tuple[int, int]:
    """Note that a connection of ours has `path` open (after connecting); the key to
    pass to release() after closing it."""
    status = os.stat(path)
    key = (status.st_dev, status.st_ino)
    held = _HELD.get(key)
    if held is None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        opened = os.fstat(fd)
        key = (opened.st_dev, opened.st_ino)  # the file as opened, should it have moved
        held = _HELD.get(key)
        if held is None:
            held = _HELD[key] = _Held(fd)
        else:
            held.fds.append(fd)  # closing it now could drop SQLite's locks: keep it too
    held.users += 1
    return key


def release(key: tuple[int, int]) -> None:
    """The connection retain() counted is closed; the last one lets the descriptor go."""
    held = _HELD.get(key)
    if held is None:
        return
    held.users -= 1
    if held.users <= 0:
        del _HELD[key]
        for fd in held.fds:
            os.close(fd)


def check_existing(path: str, spec: FileSpec) -> bool:
    """False if nothing is at `path`; True if it holds a file of `spec`'s kind that this
    version can open; StorageError naming the file and the problem otherwise. Reads
    only the first 100 bytes, through the OS: SQLite never sees a file we refuse."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageError(f"{path}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(status.st_mode):
        raise StorageError(f"{path}: is a directory, not a {spec.kind}")
    if not stat.S_ISREG(status.st_mode):
        # A FIFO would block open() until a writer came; a device or socket is no file
        # SQLite can keep a database in.
        raise StorageError(f"{path}: {_kind_of(status.st_mode)}, not a {spec.kind}")
    held = _HELD.get((status.st_dev, status.st_ino))
    try:
        if held is not None:  # in use by a connection of ours: never close() it
            header = os.pread(held.fds[0], 100, 0)
            size = os.fstat(held.fds[0]).st_size
        else:
            with open(path, "rb") as handle:
                header = handle.read(100)
                size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        raise StorageError(f"{path}: is a directory, not a {spec.kind}") from None
    except PermissionError:
        raise StorageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read: {exc.strerror}") from None
    _check_header(path, spec, header, size)
    return True


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _check_header(path: str, spec: FileSpec, header: bytes, size: int) -> None:
    what = f"not a {spec.kind}"
    if not header:
        raise StorageError(f"{path}: empty file, {what} (remove it, or choose another path)")
    if not header.startswith(SQLITE_MAGIC):
        raise StorageError(f"{path}: {what} (not an SQLite database)")
    if len(header) < 100:
        raise StorageError(f"{path}: truncated SQLite file, {what}")
    app_id = int.from_bytes(header[68:72], "big")
    if app_id != spec.app_id:
        other = KIND_BY_APP_ID.get(app_id)
        detail = f"it is a {other}" if other else "an SQLite database of another program"
        raise StorageError(f"{path}: {what} ({detail})")
    stored = int.from_bytes(header[16:18], "big")
    page_size = 65536 if stored == 1 else stored
    if page_size < 512 or page_size & (page_size - 1):  # SQLite: a power of two, 512 up
        raise StorageError(f"{path}: corrupt {spec.kind} (its header says page size {stored})")
    pages = int.from_bytes(header[28:32], "big")
    # The in-header page count is valid when the "version valid for" number equals the
    # change counter; a shorter file lost its tail, unless the missing pages are still
    # in the write-ahead log (a checkpoint that was interrupted), where SQLite finds them.
    if header[92:96] == header[24:28] and size < pages * page_size and not _has_wal(path):
        raise StorageError(
            f"{path}: truncated {spec.kind} ({size} bytes, expected {pages * page_size})"
        )
    version = int.from_bytes(header[60:64], "big")
    if version > spec.schema_version:
        raise StorageError(
            f"{path}: {spec.kind} schema version {version} is newer than this cqrs supports "
            f"({spec.schema_version}); upgrade cqrs"
        )


def _has_wal(path: str) -> bool:
    try:
        return os.path.getsize(path + "-wal") > 0
    except OSError:
        return False


def _uri(path: str, mode: str) -> str:
    quoted = path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return f"file:{quoted}?mode={mode}"


def journal_uri(path: str) -> str:
    """The read-only URI of a file, for ATTACH on a connection opened with uri=True:
    immutable, as connect() opened it, when it had to be (see _read_unwritable)."""
    absolute = os.path.abspath(path)
    uri = _uri(absolute, "ro")
    if absolute in _IMMUTABLE and unwritable_reason(absolute) is not None:
        uri += "&immutable=1"
    return uri


SQLITE_READONLY = 8
SQLITE_CANTOPEN = 14

_IMMUTABLE: set[str] = set()
"""Absolute paths this process had to open with `immutable=1` (journal_uri follows)."""


def _primary_code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code of `exc` (SQLITE_READONLY for
    SQLITE_READONLY_DIRECTORY); 0 for an error that did not come from SQLite."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else 0


def _folder_unwritable(folder: str) -> str | None:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        return None  # whatever it is, creating the file will say
    if not os.access(folder, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
        return f"{folder} is not writable"
    return None


def unwritable_reason(path: str) -> str | None:
    """Why nobody here can write the SQLite file at `path` in WAL mode, or None if it
    looks writable: its file system is mounted read-only, the file is not writable, or
    its folder is not and SQLite would have to create the -wal or -shm file there."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    except OSError:
        pass
    # The effective ids, as the kernel checks an open(): the real ones may differ.
    effective = os.access in os.supports_effective_ids
    if not os.access(path, os.W_OK, effective_ids=effective):
        return "the file is not writable"
    folder = os.path.dirname(os.path.abspath(path))
    companions = (path + "-wal", path + "-shm")
    if not os.access(folder, os.W_OK, effective_ids=effective) and not all(
        os.path.exists(name) for name in companions
    ):
        return f"{folder} is not writable"
    return None


def _open(uri: str, path: str) -> sqlite3.Connection:
    try:
        return sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            timeout=busy_timeout(),
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise translate(exc, path) from None


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection to an existing file (never creates one), transactions left to us.

    A read-only one is probed at once: on a medium nobody can write, it is opened
    again as immutable (docs/architecture.md, Storage rule 12)."""
    if not readonly:
        return _open(_uri(path, "rw"), path)
    conn = _open(_uri(path, "ro"), path)
    try:
        # SQLite opens lazily: the first statement is where a WAL reader that can
        # neither open nor create the -shm file fails.
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        conn.close()
        if _primary_code(exc) not in (SQLITE_CANTOPEN, SQLITE_READONLY):
            raise translate(exc, path) from None
        return _read_unwritable(path, exc)
    return conn


def _read_unwritable(path: str, refused: sqlite3.Error) -> sqlite3.Connection:
    """A connection reading `path` as immutable, after a read-only open was refused.

    A reader in WAL mode needs the -shm file, and creates it when it is missing: on a
    read-only medium, or in a folder it cannot write, it cannot, and SQLite refuses
    with SQLITE_CANTOPEN (or SQLITE_READONLY_DIRECTORY). `immutable=1` reads the
    database file alone, without locks or the -shm file. That is only right when
    nobody can write the file while it is read, and when the file holds every commit:
      - it is used only if unwritable_reason() finds that nobody here can write it;
      - a non-empty -wal file holds commits not yet copied into the database file,
        which an immutable reader would silently miss: refused instead.
    """
    reason = unwritable_reason(path)
    if reason is None:
        raise translate(refused, path) from None  # writable: not ours to work around
    try:
        wal_size = os.path.getsize(path + "-wal")
    except OSError:
        wal_size = 0
    if wal_size > 0:
        raise StorageError(
            f"{path}: cannot be read here ({reason}): its write-ahead log {path}-wal holds "
            f"commits that SQLite reads only through a {os.path.basename(path)}-shm file it "
            "cannot create or use here; open it once where it can be written (any cqrs "
            "command does), or copy the files somewhere writable"
        )
    conn = _open(_uri(path, "ro") + "&immutable=1", path)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path) from None
    _IMMUTABLE.add(os.path.abspath(path))
    return conn


def create_atomically(
    path: str,
    spec: FileSpec,
    init: Callable[[sqlite3.Connection], None],
    *,
    exclusive: bool = False,
) -> None:
    """Create the file at `path` fully initialised by `init`; if another process
    created it meanwhile, use theirs (or, with `exclusive`, fail)."""

    def build(temp: str) -> None:
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            conn.execute(f"PRAGMA application_id = {spec.app_id}")
            conn.execute(f"PRAGMA user_version = {spec.schema_version}")
            init(conn)
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()

    place_new_file(path, build, what=spec.kind, exclusive=exclusive)
    # If another process created it first, check that theirs is what we expect.
    check_existing(path, spec)


def place_new_file(path: str, build: Callable[[str], None], *, what: str, exclusive: bool) -> None:
    """Let `build` make the file complete under a temporary name beside `path`, then
    hard-link it into place: nobody ever sees a half-made file, and an existing file
    is never replaced. Owner-only permissions, unless the umask is stricter."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{folder}: cannot create folder: {exc.strerror}") from None
    reason = _folder_unwritable(folder)
    if reason is not None:
        raise StorageError(f"{path}: cannot create {what} ({reason})")
    temp = f"{path}.new-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        build(temp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o600 & ~umask)
        try:
            os.link(temp, path)
        except FileExistsError:
            if exclusive:
                raise UsageError(f"{path}: already exists; give the path of a new file") from None
            # else another process created it first: use theirs
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the new name durable, not just the file's content
        finally:
            os.close(dir_fd)
    except sqlite3.Error as exc:
        raise translate(exc, path) from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot create {what}: {exc.strerror}") from None
    finally:
        for leftover in (temp, temp + "-wal", temp + "-shm", temp + "-journal"):
            try:
                os.unlink(leftover)
            except OSError:
                pass


def translate(exc: sqlite3.Error, path: str) -> CqrsError:
    """The typed error for an SQLite failure on `path`."""
    message = str(exc)
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return BusyError(
            f"{path}: locked by another process for longer than the busy timeout; "
            "nothing was written, retry"
        )
    if "full" in lowered:
        return StorageError(f"{path}: disk full; nothing was written")
    if "malformed" in lowered or "not a database" in lowered:
        return StorageError(f"{path}: corrupt database ({message})")
    if _primary_code(exc) in (SQLITE_READONLY, SQLITE_CANTOPEN):
        reason = unwritable_reason(path) if os.path.exists(path) else None
        if reason is not None:
            return StorageError(f"{path}: read-only ({reason}); nothing was written")
    if "readonly" in lowered or "read-only" in lowered:
        return StorageError(f"{path}: read-only ({message}); nothing was written")
    if "unable to open" in lowered:
        return StorageError(f"{path}: cannot open ({message})")
    return StorageError(f"{path}: {message}")


def rollback_quietly(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open: on disk full SQLite has rolled it back
    itself, and a second ROLLBACK would raise."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
