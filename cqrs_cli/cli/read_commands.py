"""The read commands' behaviour, shared by the fast path and the typer commands:
consistency options first (--sync, --min-position), then one query, then rendering,
then a one-line note on stderr if the projection is behind the journal."""

from __future__ import annotations

import sys

from ..errors import NotFoundError
from ..read.models import HistoryEntry
from ..text import printable
from . import output
from .item_params import MAX_WAIT
from .state import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import TypedDict, Unpack

    from ..read.models import ItemView, Status
    from ..read.query_service import QueryService

    Listed = ItemView | HistoryEntry

    class Consistency(TypedDict, total=False):
        """How fresh a read must be: the options of item_params.READ_CONSISTENCY, which
        every read command takes and hands on to _Reading."""

        sync: bool
        min_position: int | None
        wait: float | None
        quiet: bool


DEFAULT_WAIT = 5.0
HISTORY_TABLE_ROWS = 1000
"""At most this many changes in `item history`'s table on a terminal, without --limit."""


class _Reading:
    """`with _Reading(consistency) as service:` a read command's query service.

    Made after the consistency options: --sync catches the projection up, --min-position
    waits for it (exit 5 if it does not get there in time). On leaving, before it is
    closed: the note on stderr if the projection is behind, also when the item was not
    found, which may only mean "not synced yet"."""

    __slots__ = ("service",)

    def __init__(self, consistency: Consistency) -> None:
        from ..read.query_service import QueryService

        wait = consistency.get("wait")
        _check_wait(wait)
        if consistency.get("quiet"):
            state.quiet = True
        self.service = QueryService(state.paths())
        if consistency.get("sync"):
            self.service.sync()
        min_position = consistency.get("min_position")
        if min_position is not None:
            self.service.wait_for(min_position, DEFAULT_WAIT if wait is None else wait)

    def __enter__(self) -> QueryService:
        return self.service

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        with self.service:
            if kind is None or issubclass(kind, NotFoundError):
                _note_if_behind(self.service)


def _note_if_behind(service: QueryService) -> None:
    """One line on stderr when the answer may be missing recent writes. Cheap: two
    indexed lookups."""
    if state.quiet:
        return
    from ..errors import UnavailableError

    checkpoint = service.checkpoint()
    try:
        if checkpoint and not service.has_journal():
            from ..journal.redaction import redacted

            output.note(
                f"cqrs: note: no journal at {redacted(service.paths.journal)}: cannot tell "
                "whether the projection is current (is --journal right?)"
            )
            return
        head = service.journal_head()
    except UnavailableError as unreachable:
        # A reader host answers from its projection while the journal's server is
        # down: only this note needed the server.
        output.note(
            f"cqrs: note: the journal is unreachable ({unreachable}): cannot tell whether "
            "the projection is current"
        )
        return
    if checkpoint < head:
        from ..sync.catchup_state import behind_note

        output.note(
            f"cqrs: note: the projection is behind the journal (position {checkpoint} of "
            f"{head}){behind_note(service.paths.projection)}; run `cqrs sync` or pass --sync"
        )


def _check_wait(wait: float | None) -> None:
    from ..errors import UsageError

    if wait is not None and not 0 <= wait < MAX_WAIT:
        raise UsageError(f"invalid --wait {wait}: give seconds, 0 or more")


def run_get(
    item_id: str,
    *,
    as_json: bool = False,
    raw: bool = False,
    include_deleted: bool = False,
    at: int | None = None,
    as_of: str | None = None,
    **consistency: Unpack[Consistency],
) -> int:
    if at is not None or as_of is not None:
        asked = consistency.get("sync") or consistency.get("min_position") is not None
        item = _item_from_journal(item_id, at, as_of, include_deleted, asked)
    else:
        with _Reading(consistency) as service:
            item = service.get_item(item_id, include_deleted=include_deleted)
    if as_json:
        output.json_line(item.to_json())
    elif raw:
        _write_raw(item.description)
    else:
        output.data(str(item) + (" (deleted)" if item.deleted else ""))
    return 0


def _write_raw(description: str) -> None:
    """The description alone, for `desc=$(cqrs item get ID --raw)`: piped, exactly as
    stored (a multi-line text keeps its lines; the shell's $(...) drops the final
    newline this adds); on a terminal, controls other than newline and tab are still
    escaped, so that a stored escape sequence never reaches it."""
    if sys.stdout.isatty():
        description = "\n".join(
            "\t".join(printable(part) for part in line.split("\t"))
            for line in description.split("\n")
        )
    sys.stdout.write(description + "\n")


def _item_from_journal(
    item_id: str,
    at: int | None,
    as_of: str | None,
    include_deleted: bool,
    consistency: object,
) -> ItemView:
    """Time travel: the item's state folded from the journal up to a position or time."""
    from ..errors import UsageError
    from ..journal.locator import find_journal
    from ..read.time_travel import item_at, parse_timestamp

    if at is not None and as_of is not None:
        raise UsageError("give --at or --as-of, not both")
    if consistency:
        raise UsageError(
            "--at and --as-of read the journal: --sync and --min-position do not apply"
        )
    moment = parse_timestamp(as_of) if as_of is not None else None
    journal = find_journal(state.paths().journal)
    if journal is None:
        from ..domain.item import ItemNotFound
        from ..domain.validation import validate_item_id

        raise ItemNotFound(validate_item_id(item_id))
    try:
        item = item_at(journal, item_id, position=at, as_of=moment, include_deleted=include_deleted)
    finally:
        journal.close()
    where = f"position {at}" if at is not None else f"time {moment}"
    output.note(f"(read from the journal as of {where}, not from the projection)")
    return item


def run_list(
    *,
    limit: int | None = None,
    prefix: str | None = None,
    after: str | None = None,
    include_deleted: bool = False,
    as_json: bool = False,
    nl: bool = False,
    no_pager: bool = False,
    **consistency: Unpack[Consistency],
) -> int:
    with _Reading(consistency) as service:
        if as_json or nl or sys.stdout.isatty():
            items = service.list_items(
                limit=limit, prefix=prefix, after=after, include_deleted=include_deleted
            )
            _render(
                items,
                as_json=as_json,
                nl=nl,
                table=_items_table,
                line=_item_line,
                pager=not no_pager,
            )
        else:
            # Piped: ids only, read from the index alone, streamed.
            write = sys.stdout.write
            for item_id in service.item_ids(
                limit=limit, prefix=prefix, after=after, include_deleted=include_deleted
            ):
                write(printable(item_id) + "\n")
    return 0


def _render(
    records: Iterable[Listed],
    *,
    as_json: bool,
    nl: bool,
    table: Callable[[Iterable[Listed], bool], None],
    line: Callable[[Listed], str],
    pager: bool = True,
) -> None:
    """JSON (an array, or NDJSON with `nl`), a table on a terminal (streamed, paged
    when longer than the screen), else one plain line per record with user text made
    safe. `records` must have done its checks already (the query services' iterators
    do theirs at the call): nothing that can fail is left before the first byte."""
    if as_json or nl:
        _emit_json(records, nl)
    elif sys.stdout.isatty():
        table(records, pager)
    else:
        write = sys.stdout.write
        for record in records:
            write(line(record) + "\n")


def _items_table(items: Iterable[Listed], pager: bool) -> None:
    from .tables import items_table

    items_table(items, pager=pager)  # type: ignore[arg-type]


def _history_table(entries: Iterable[Listed], pager: bool) -> None:
    from .tables import history_table

    history_table(entries, pager=pager)  # type: ignore[arg-type]


def _item_line(item: Listed) -> str:
    return printable(str(item))


def _history_line(entry: Listed) -> str:
    assert isinstance(entry, HistoryEntry)
    text = "" if entry.description is None else printable(entry.description)
    return f"{entry.version}\t{entry.event_type}\t{entry.recorded_at}\t{entry.position}\t{text}"


def _emit_json(records: Iterable[Listed], nl: bool) -> None:
    """A JSON array, or with `nl` one JSON object per line; streamed either way."""
    import json
    from itertools import chain

    from ..text import json_safe

    write = sys.stdout.write
    records = iter(records)
    # The first record before the first byte: an iterator that checks lazily fails
    # here, leaving stdout empty rather than holding a lone `[`.
    first = next(records, None)
    if nl:
        for record in chain(() if first is None else (first,), records):
            write(json_safe(json.dumps(record.to_json(), ensure_ascii=False)) + "\n")
        return
    if first is None:
        write("[]\n")
        return
    write("[" + json_safe(json.dumps(first.to_json(), ensure_ascii=False)))
    for record in records:
        write("," + json_safe(json.dumps(record.to_json(), ensure_ascii=False)))
    write("]\n")


def run_history(
    item_id: str,
    *,
    limit: int | None = None,
    after: int | None = None,
    before: int | None = None,
    newest_first: bool = False,
    as_json: bool = False,
    nl: bool = False,
    no_pager: bool = False,
    **consistency: Unpack[Consistency],
) -> int:
    """Streamed as it is read, in every form: memory does not grow with the history.
    The table on a terminal shows at most --limit, or HISTORY_TABLE_ROWS, changes."""
    table = not (as_json or nl) and sys.stdout.isatty()
    capped = table and limit is None
    with _Reading(consistency) as service:
        entries = service.iter_history(
            item_id,
            limit=HISTORY_TABLE_ROWS + 1 if capped else limit,
            after=after,
            before=before,
            newest_first=newest_first,
        )
        if not table:
            _render(entries, as_json=as_json, nl=nl, table=_history_table, line=_history_line)
            return 0
        seen = _Counted(entries, HISTORY_TABLE_ROWS)
        _history_table(seen, not no_pager)
        if capped and seen.more:
            cursor = "--before" if newest_first else "--after"
            output.note(
                f"cqrs: note: the first {HISTORY_TABLE_ROWS} changes only; for the next "
                f"ones pass {cursor} {seen.last_version}, or give --limit"
            )
    return 0


class _Counted:
    """At most `cap` entries of `entries`, remembering the last version given and
    whether there were more."""

    __slots__ = ("cap", "entries", "last_version", "more")

    def __init__(self, entries: Iterator[HistoryEntry], cap: int) -> None:
        self.entries = entries
        self.cap = cap
        self.last_version = 0
        self.more = False

    def __iter__(self) -> Iterator[HistoryEntry]:
        for n, entry in enumerate(self.entries):
            if n >= self.cap:
                self.more = True
                return
            self.last_version = entry.version
            yield entry


def run_search(
    text: str,
    *,
    limit: int = 20,
    fts: bool = False,
    as_json: bool = False,
    nl: bool = False,
    no_pager: bool = False,
    **consistency: Unpack[Consistency],
) -> int:
    with _Reading(consistency) as service:
        hits = service.search(text, limit=limit, fts=fts)
    _render(hits, as_json=as_json, nl=nl, table=_items_table, line=_item_line, pager=not no_pager)
    return 0


def run_status(*, as_json: bool = False) -> int:
    from ..read.query_service import QueryService

    with QueryService(state.paths()) as service:
        status = service.status()
    if as_json:
        output.json_line(status.to_json())
        return 0
    output.data(f"journal:     {status.journal} (head position {status.journal_head})")
    if not status.projection_exists:
        output.data(f"projection:  {status.projection} (none yet: run `cqrs sync`)")
        _catch_up_line(status)
        return 0
    belongs = "built from this journal" if status.belongs else "built from ANOTHER journal"
    output.data(f"projection:  {status.projection} ({belongs})")
    output.data(f"last sync:   {status.last_sync_at or 'never'}")
    for view in status.views:
        output.data(
            f"view {view.view:<13} version {view.version}  checkpoint {view.checkpoint}  "
            f"lag {view.lag}"
        )
    _catch_up_line(status)
    return 0


def _catch_up_line(status: Status) -> None:
    if status.catch_up is not None:
        output.data(f"catch-up:    {status.catch_up.describe()}")
