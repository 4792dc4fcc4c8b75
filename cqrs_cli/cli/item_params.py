"""The item commands' arguments and options, and the global options, declared once.

Two parsers read these: the fast path (fast.py) builds its tables from them for the hot
commands, and options.py builds the typer parameters of every `cqrs item` command and
of the global options from them (names, metavar, help, type, range, default). So a
renamed option, a changed range or a new flag is one edit here, seen by both. The order
of a command's parameters is the order of its --help.

Imported on the fast path: plain classes and literals only (no typing, dataclasses,
inspect), so that the hot commands start up as fast as before.
"""

from __future__ import annotations

MAX_INT = 2**63 - 1
"""The largest count or position: SQLite's integers are 64-bit."""
MAX_WAIT = 86400.0 * 366


class Param:
    """One argument (no names: positional, required) or option (its names, e.g. -q and
    --quiet) of a command. `type` is str, int or float for an option taking a value,
    bool for a flag (default False); an option whose default is None is optional
    (`int | None`). `envvar`: typer reads the option from that environment variable when
    it is not given. `fast` False: only typer parses it, and the fast path hands any
    command line using it to typer. `complete`: what a shell completes for its value
    (complete_values.py): "item" (ids in the projection), "live-item" (not deleted),
    "file", "folder"; None: nothing (never file names)."""

    __slots__ = (
        "complete",
        "default",
        "dest",
        "envvar",
        "fast",
        "help",
        "max",
        "metavar",
        "min",
        "names",
        "show_default",
        "type",
    )

    def __init__(
        self,
        dest: str,
        *names: str,
        help: str,
        type: type = str,
        metavar: str | None = None,
        default: object = None,
        min: float | None = None,
        max: float | None = None,
        show_default: bool = True,
        envvar: str | None = None,
        fast: bool = True,
        complete: str | None = None,
    ) -> None:
        self.dest = dest
        self.names = names
        self.type = type
        self.help = help
        self.metavar = metavar
        self.default = default
        self.min = min
        self.max = max
        self.show_default = show_default
        self.envvar = envvar
        self.fast = fast
        self.complete = complete

    @property
    def is_argument(self) -> bool:
        return not self.names

    @property
    def is_flag(self) -> bool:
        return self.type is bool

    def __repr__(self) -> str:
        return f"Param({self.dest!r}, {self.names!r})"


def argument(
    dest: str, metavar: str, help: str, *, show_default: bool = False, complete: str | None = None
) -> Param:
    return Param(dest, metavar=metavar, help=help, show_default=show_default, complete=complete)


def flag(dest: str, *names: str, help: str, envvar: str | None = None) -> Param:
    return Param(dest, *names, type=bool, help=help, default=False, envvar=envvar)


def count(
    dest: str,
    name: str,
    *,
    metavar: str,
    help: str,
    default: int | None = None,
    show_default: bool = True,
    fast: bool = True,
) -> Param:
    """An option taking a count or a journal position: a whole number, 0 to MAX_INT."""
    return Param(
        dest,
        name,
        type=int,
        min=0,
        max=MAX_INT,
        metavar=metavar,
        help=help,
        default=default,
        show_default=show_default,
        fast=fast,
    )


# --- The global options, `cqrs [OPTIONS] COMMAND` -------------------------------------------
# Each names a field of the CLI state (state.py); typer's own (--version) are in app.py.

GLOBAL_OPTIONS = (
    Param(
        "journal",
        "--journal",
        metavar="PATH",
        envvar="CQRS_JOURNAL",
        help="The event journal file. \\[default: HOME/journal.db]",
        show_default=False,
        complete="file",
    ),
    Param(
        "projection",
        "--projection",
        metavar="PATH",
        envvar="CQRS_PROJECTION",
        help="The projection file. \\[default: HOME/projection.db]",
        show_default=False,
        complete="file",
    ),
    Param(
        "home",
        "--home",
        metavar="DIR",
        envvar="CQRS_HOME",
        help="Folder holding both files. \\[default: $XDG_DATA_HOME/cqrs]",
        show_default=False,
        complete="folder",
    ),
    flag("quiet", "-q", "--quiet", help="No messages on stderr, only errors."),
    flag("debug", "--debug", envvar="CQRS_DEBUG", help="Show tracebacks of unexpected errors."),
)


# --- Shared by several commands -----------------------------------------------------------

NEW_ITEM_ID = argument("item_id", "ID", "The item's id.")
"""A new item's id: nothing to complete (an existing live id would be a conflict)."""
LIVE_ITEM_ID = argument("item_id", "ID", "The item's id.", complete="live-item")
ITEM_ID = argument("item_id", "ID", "The item's id.", complete="item")
"""Any item with a history, deleted ones too."""
EXPECT_VERSION = count(
    "expect_version",
    "--expect-version",
    metavar="N",
    help="Fail with exit 4 unless the item is at version N (0: never written).",
    show_default=False,
)
IDEMPOTENCY_KEY = Param(
    "idempotency_key",
    "--idempotency-key",
    metavar="KEY",
    help="Apply at most once: a retry with the same KEY appends nothing and exits 0.",
    show_default=False,
)
CORRELATION_ID = Param(
    "correlation_id",
    "--correlation-id",
    metavar="ID",
    help="Stored in the events' metadata, to tie them to a wider operation.",
    show_default=False,
)
DRY_RUN = flag("dry_run", "--dry-run", help="Show the events it would append; write nothing.")
SYNC_AFTER_WRITE = flag(
    "sync", "--sync", help="Catch the projection up afterwards (read your writes)."
)
QUIET = flag("quiet", "-q", "--quiet", help="No note on stderr when the projection is behind.")
WRITE_OPTIONS = (
    EXPECT_VERSION,
    IDEMPOTENCY_KEY,
    CORRELATION_ID,
    DRY_RUN,
    flag("as_json", "--json", help="Print the result as one JSON object."),
    SYNC_AFTER_WRITE,
    flag("quiet", "-q", "--quiet", help="No messages on stderr (journal position), only errors."),
)

INCLUDE_DELETED = flag(
    "include_deleted", "--include-deleted", help="Deleted items too (flagged as deleted)."
)
SYNC = flag("sync", "--sync", help="Catch the projection up first (read your writes).")
MIN_POSITION = count(
    "min_position",
    "--min-position",
    metavar="POS",
    help="Wait until the projection reached POS (a write's position); else exit 5.",
    show_default=False,
)
WAIT = Param(
    "wait",
    "--wait",
    metavar="SECONDS",
    type=float,
    min=0.0,
    max=MAX_WAIT,
    help="How long --min-position waits. \\[default: 5]",
    show_default=False,
)
READ_CONSISTENCY = (SYNC, MIN_POSITION, WAIT, QUIET)
"""How fresh a read must be; last in every read command's options."""
NEWLINE_JSON = flag("nl", "--nl", help="One JSON object per line (NDJSON), streamed.")
JSON_RECORDS = flag("as_json", "--json", help="One JSON array of records.")
NO_PAGER = flag(
    "no_pager",
    "--no-pager",
    help="On a terminal, print rows as they come instead of paging (also: CQRS_PAGER=cat).",
)


# --- The commands, `cqrs item NAME` -----------------------------------------------------------

ITEM_COMMANDS: dict[str, tuple[Param, ...]] = {
    "create": (
        NEW_ITEM_ID,
        Param(
            "description",
            "-d",
            "--description",
            metavar="TEXT",
            help="The item's description; '-' reads it from stdin.",
            default="",
        ),
        *WRITE_OPTIONS,
    ),
    "update": (
        LIVE_ITEM_ID,
        argument("description", "DESCRIPTION", "The new description; '-' reads it from stdin."),
        *WRITE_OPTIONS,
    ),
    "delete": (LIVE_ITEM_ID, *WRITE_OPTIONS),
    "get": (
        LIVE_ITEM_ID,
        flag("as_json", "--json", help="The whole record as JSON."),
        flag(
            "raw",
            "--raw",
            help="The description alone, as stored (newlines and all) when piped.",
        ),
        INCLUDE_DELETED,
        *READ_CONSISTENCY,
        # Time travel reads the journal, not the projection: not a hot path.
        count(
            "at",
            "--at",
            metavar="POS",
            help="Time travel: the item as of journal position POS (reads the journal).",
            fast=False,
        ),
        Param(
            "as_of",
            "--as-of",
            metavar="TIME",
            help="Time travel: the item as of an ISO 8601 time, UTC unless it says otherwise.",
            fast=False,
        ),
    ),
    "list": (
        count(
            "limit",
            "--limit",
            metavar="N",
            help="At most N items.",
            show_default=False,
        ),
        Param(
            "prefix",
            "--prefix",
            metavar="TEXT",
            help="Only ids starting with TEXT.",
            complete="live-item",
        ),
        Param(
            "after",
            "--after",
            metavar="ID",
            help="Only ids after ID (keyset pagination: the last id seen).",
            complete="live-item",
        ),
        INCLUDE_DELETED,
        JSON_RECORDS,
        NEWLINE_JSON,
        NO_PAGER,
        *READ_CONSISTENCY,
    ),
    # Not hot commands (fast.py does not run them), declared here for the options they
    # share with the others.
    "history": (
        ITEM_ID,
        count(
            "limit",
            "--limit",
            metavar="N",
            help="At most N changes.",
            show_default=False,
        ),
        count(
            "after",
            "--after",
            metavar="VERSION",
            help="Only versions after VERSION (paging forward: the last version seen).",
            show_default=False,
        ),
        count(
            "before",
            "--before",
            metavar="VERSION",
            help="Only versions before VERSION (paging back with --newest-first).",
            show_default=False,
        ),
        flag(
            "newest_first",
            "--newest-first",
            help="Newest change first (the latest N with --limit).",
        ),
        flag("as_json", "--json", help="One JSON array of changes."),
        NEWLINE_JSON,
        NO_PAGER,
        *READ_CONSISTENCY,
    ),
    "search": (
        argument(
            "text", "TEXT", "Words that must all start a word of the item.", show_default=True
        ),
        count(
            "limit",
            "--limit",
            metavar="N",
            help="At most N results, best first.",
            default=20,
        ),
        flag("fts", "--fts", help='TEXT is an FTS5 query (AND, OR, NOT, "phrase", prefix*).'),
        JSON_RECORDS,
        NEWLINE_JSON,
        NO_PAGER,
        *READ_CONSISTENCY,
    ),
}


# --- Options that cannot go together ---------------------------------------------------------

EXCLUSIVE: dict[str, tuple[tuple[str, str], ...]] = {
    # get's --at and --as-of (each other, --sync, --min-position) are checked where
    # they are read (read_commands._item_from_journal): exit 2, one line, as documented.
    "get": (("as_json", "raw"),),
    "list": (("as_json", "nl"),),
    "history": (("as_json", "nl"),),
    "search": (("as_json", "nl"),),
}
"""Per command, pairs of options (by dest) that contradict each other: giving both is a
usage error (exit 2) naming both."""
NEEDS: tuple[tuple[str, str], ...] = (("wait", "min_position"),)
"""(option, option it needs): the first does nothing without the second, so giving it
alone is a usage error, in every command that declares both."""


def _given(param: Param, options: dict[str, object]) -> bool:
    return param.dest in options and options[param.dest] != param.default


def misuse(command: str, options: dict[str, object]) -> str | None:
    """The first contradiction among the options of `cqrs item COMMAND` as parsed
    (dest -> value; an option not given has its default), as a message naming both
    options; None if there is none. typer reports it as a usage error; the fast path
    hands such a command line to typer."""
    params = {p.dest: p for p in ITEM_COMMANDS.get(command, ()) if not p.is_argument}

    def name(dest: str) -> str:
        return params[dest].names[-1]

    for first, second in EXCLUSIVE.get(command, ()):
        if _given(params[first], options) and _given(params[second], options):
            return f"{name(first)} and {name(second)} cannot be used together"
    for option, needed in NEEDS:
        if option not in params or needed not in params:
            continue
        if _given(params[option], options) and not _given(params[needed], options):
            return f"{name(option)} only applies with {name(needed)}: give both, or neither"
    return None
