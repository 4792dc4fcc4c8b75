"""`cqrs journal verify|export|import|backup` and `cqrs events`: the journal as a
first-class file you can inspect, copy and restore."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import CqrsError, UsageError
from . import output
from .complete_values import Choices
from .item_params import MAX_INT
from .options import DEFAULT_POLL, Poll, Quiet, completed_as, quiet
from .state import state

if TYPE_CHECKING:
    from ..journal.base import Journal

journal_app = typer.Typer(
    help="Verify, export, import and back up the event journal.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Json = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]


def _open_journal() -> Journal:
    """The journal the global options name, read-only; exit 7 if there is none."""
    from ..errors import StorageError
    from ..journal.locator import find_journal, redacted

    locator = state.paths().journal
    journal = find_journal(locator)
    if journal is None:
        raise StorageError(f"{redacted(locator)}: no journal here (nothing has been written yet)")
    return journal


@journal_app.command("verify")
def verify_command(as_json: Json = False, quiet_: Quiet = False) -> int:
    """Check the hash chain, stream versions, positions, schema, SQLite integrity and
    the state records. Prints what it checked; with -q, nothing unless it fails.

    Exit 7 naming the first bad position on any fault (with --json, a JSON object with
    "ok": false, "position" and "problem" on stdout as well).

    Example: cqrs -q journal verify && cqrs journal backup /backups/journal-$(date +%F).db
    """
    from ..journal.verify import JournalFault, verify
    from .sync_command import progress_bar

    quiet(quiet_)
    journal = _open_journal()
    try:
        with progress_bar("Verifying") as progress:
            report = verify(journal, progress)
    except JournalFault as fault:
        if as_json:
            output.json_line(
                {
                    "ok": False,
                    "journal": journal.locator,
                    "position": fault.position,
                    "problem": fault.problem,
                }
            )
        raise
    finally:
        journal.close()
    if as_json:
        output.json_line(report.to_json())
        return 0
    if state.quiet:
        return 0
    output.data(f"Journal {journal.locator} (id {report.journal_id})")
    for check in report.checks:
        output.data(f"  ok  {check}")
    output.data(f"Verified {report.events} events.")
    return 0


@journal_app.command("export")
def export_command(
    dest: Annotated[
        str,
        typer.Argument(
            metavar="[FILE]",
            help="Where to write; '-' (default) is stdout.",
            click_type=completed_as("file"),
        ),
    ] = "-",
    quiet_: Quiet = False,
) -> int:
    """Write the whole journal as lossless NDJSON (ids, positions and hashes included).

    `cqrs journal import` turns it back into a journal, byte for byte.

    Example: cqrs journal export | gzip > journal.ndjson.gz
    """
    from ..journal.transfer import export_lines
    from ..sqlitefile import place_new_file

    quiet(quiet_)
    journal = _open_journal()
    try:
        if dest == "-":
            write = sys.stdout.write
            for line in export_lines(journal):
                write(line)
        else:

            def build(temp: str) -> None:
                with open(temp, "w", encoding="utf-8") as handle:
                    handle.writelines(export_lines(journal))
                    handle.flush()
                    os.fsync(handle.fileno())

            place_new_file(dest, build, what="export", exclusive=True)
            output.note(f"Exported journal {journal.journal_id} to {dest}")
    finally:
        journal.close()
    return 0


@journal_app.command("import")
def import_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="[FILE]",
            help="An export; '-' (default) reads stdin.",
            click_type=completed_as("file"),
        ),
    ] = "-",
    quiet_: Quiet = False,
) -> int:
    """Create a new journal from an export, checking its hash chain as it goes.

    The journal goes to --journal, which must not exist. A broken, reordered or
    truncated export is refused with its line number, and no journal is created.

    Example: gunzip -c journal.ndjson.gz | cqrs --journal restored.db journal import
    """
    from functools import partial

    from ..journal.locator import create_journal, find_journal, journal_exists, redacted
    from ..journal.transfer import import_journal
    from .apply_command import input_size, open_input, progress_ticks, read_lines
    from .sync_command import Interrupted, Interrupts, progress_bar

    quiet(quiet_)
    raw = open_input(source)
    size = input_size(raw)
    locator = state.paths().journal
    try:
        existed = journal_exists(locator)
    except CqrsError:
        existed = True  # something else is there: the import refuses it as before
    with Interrupts():
        try:
            with progress_bar("Importing", in_bytes=size > 0) as progress:
                # A file: bytes read of its size; a stream: events imported, no total.
                stream = read_lines(raw, progress_ticks(progress, size) if size else None)
                journal_id, count = import_journal(
                    stream, partial(create_journal, locator), None if size else progress
                )
                if progress is not None and size:
                    progress(size, size)
        except KeyboardInterrupt:
            # The journal is built under a temporary name and linked into place once
            # complete: if it is there now, the import had finished.
            journal = None if existed else find_journal(locator)
            if journal is None:
                raise Interrupted(
                    "no journal was created (an import is all or nothing); re-run the same command"
                ) from None
            try:
                journal_id, count = journal.journal_id, journal.count_after(0)
            finally:
                journal.close()
    output.note(f"Imported {count} events into {redacted(locator)} (journal id {journal_id})")
    return 0


@journal_app.command("backup")
def backup_command(
    dest: Annotated[
        str,
        typer.Argument(
            metavar="DEST", help="The new backup file.", click_type=completed_as("file")
        ),
    ],
    as_json: Json = False,
    quiet_: Quiet = False,
) -> int:
    """Copy the journal to DEST (a new file) with SQLite's online backup: one
    consistent snapshot, while writers go on appending. Says what it copied on stderr,
    as export and import do (--json: on stdout).

    Example: cqrs journal backup "/backups/journal-$(date +%F).db"
    """
    from ..journal.transfer import backup

    quiet(quiet_)
    if not dest:
        raise UsageError("DEST is empty: give the path of the new backup file")
    journal = _open_journal()
    try:
        events, head = backup(journal, dest)
    finally:
        journal.close()
    if as_json:
        output.json_line({"backup": dest, "events": events, "head": head})
    else:
        output.note(f"Backed up {events} events (head position {head}) to {dest}")
    return 0


EVENT_TYPES = {
    "ItemCreated": "an item was created (or created again after a delete)",
    "ItemUpdated": "an item's description changed",
    "ItemDeleted": "an item was deleted",
}
"""The values of `events --type` with what each means, for shell completion; the
journal's own list (domain.codec.SCHEMA_VERSIONS) is what check_event_type accepts,
and a test holds the two equal."""


def check_event_type(event_type: str) -> None:
    """A type the journal can hold, or a usage error naming them: a typo must not read
    as "no such events"."""
    from ..domain.codec import SCHEMA_VERSIONS
    from ..text import printable

    if event_type in SCHEMA_VERSIONS:
        return
    known = list(SCHEMA_VERSIONS)
    hint = next((f"; did you mean {k}?" for k in known if k.lower() == event_type.lower()), "")
    raise UsageError(
        f"invalid --type {printable(event_type)!r}: give {', '.join(known[:-1])} "
        f"or {known[-1]}{hint}"
    )


def events_command(
    stream: Annotated[
        str | None,
        typer.Option(
            "--stream",
            metavar="ID",
            help="Only this item's events.",
            click_type=completed_as("item"),
        ),
    ] = None,
    after: Annotated[
        int,
        typer.Option(
            "--after", metavar="POS", min=0, max=MAX_INT, help="Only events after position POS."
        ),
    ] = 0,
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", min=0, max=MAX_INT, help="At most N events."),
    ] = None,
    event_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            help="Only ItemCreated, ItemUpdated or ItemDeleted.",
            click_type=Choices(EVENT_TYPES),
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until interrupted.")
    ] = False,
    poll: Poll = DEFAULT_POLL,
) -> int:
    """Print the journal's events as NDJSON envelopes, in position order.

    Each line: position, event_id, stream_id, stream_version, event_type,
    schema_version, data, recorded_at, metadata, prev_hash, hash.

    Example: cqrs events --type ItemDeleted | jq -r .stream_id
    """
    from .events_output import stream_events
    from .sync_command import check_poll, stop_on_sigterm

    if after < 0 or (limit is not None and limit < 0):
        raise UsageError("--after and --limit must be 0 or more")
    if event_type is not None:
        check_event_type(event_type)
    check_poll(poll)
    if follow:
        stop_on_sigterm()
    return stream_events(
        stream_id=stream,
        after=after,
        limit=limit,
        event_type=event_type,
        follow=follow,
        poll=poll,
    )
