"""`cqrs item ...`: the item commands as typer sees them (help, parsing). Their
behaviour lives in write_commands.py, shared with the fast path."""

from __future__ import annotations

from typing import Annotated

import typer

from .fast import MAX_INT
from .options import (
    CorrelationId,
    DryRun,
    ExpectVersion,
    IdempotencyKey,
    IncludeDeleted,
    ItemId,
    Json,
    Limit,
    MinPosition,
    NewlineJson,
    Quiet,
    Sync,
    SyncAfterWrite,
    Wait,
)
from .read_commands import run_get, run_history, run_list, run_search
from .write_commands import run_write

item_app = typer.Typer(
    help=(
        "Items: create, update and delete them (appending to the journal); get, list, "
        "search them and see their history (reading the projection)."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@item_app.command("create")
def create(
    item_id: ItemId,
    description: Annotated[
        str,
        typer.Option(
            "-d",
            "--description",
            metavar="TEXT",
            help="The item's description; '-' reads it from stdin.",
        ),
    ] = "",
    expect_version: ExpectVersion = None,
    idempotency_key: IdempotencyKey = None,
    correlation_id: CorrelationId = None,
    dry_run: DryRun = False,
    as_json: Json = False,
    sync: SyncAfterWrite = False,
    quiet: Quiet = False,
) -> int:
    """Create an item: appends ItemCreated. Exit 4 if the item already exists.

    A deleted item may be created again; its history goes on.

    Example: cqrs item create Item1 -d 'First item'
    """
    return run_write(
        "create",
        item_id,
        description,
        expect_version=expect_version,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
        dry_run=dry_run,
        as_json=as_json,
        sync=sync,
        quiet=quiet,
    )


@item_app.command("update")
def update(
    item_id: ItemId,
    description: Annotated[
        str,
        typer.Argument(
            metavar="DESCRIPTION",
            help="The new description; '-' reads it from stdin.",
            show_default=False,
        ),
    ],
    expect_version: ExpectVersion = None,
    idempotency_key: IdempotencyKey = None,
    correlation_id: CorrelationId = None,
    dry_run: DryRun = False,
    as_json: Json = False,
    sync: SyncAfterWrite = False,
    quiet: Quiet = False,
) -> int:
    """Change an item's description: appends ItemUpdated. Exit 3 if there is no such
    live item; nothing is appended when the description is already that.

    Example: cqrs item update Item1 'Updated Description'
    """
    return run_write(
        "update",
        item_id,
        description,
        expect_version=expect_version,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
        dry_run=dry_run,
        as_json=as_json,
        sync=sync,
        quiet=quiet,
    )


@item_app.command("delete")
def delete(
    item_id: ItemId,
    expect_version: ExpectVersion = None,
    idempotency_key: IdempotencyKey = None,
    correlation_id: CorrelationId = None,
    dry_run: DryRun = False,
    as_json: Json = False,
    sync: SyncAfterWrite = False,
    quiet: Quiet = False,
) -> int:
    """Delete an item: appends ItemDeleted. Exit 3 if there is no such live item.

    Example: cqrs item delete Item1 --expect-version 2
    """
    return run_write(
        "delete",
        item_id,
        expect_version=expect_version,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
        dry_run=dry_run,
        as_json=as_json,
        sync=sync,
        quiet=quiet,
    )


@item_app.command("get")
def get(
    item_id: ItemId,
    as_json: Annotated[bool, typer.Option("--json", help="The whole record as JSON.")] = False,
    include_deleted: IncludeDeleted = False,
    sync: Sync = False,
    min_position: MinPosition = None,
    wait: Wait = None,
    quiet: Quiet = False,
    at: Annotated[
        int | None,
        typer.Option(
            "--at",
            metavar="POS",
            min=0,
            max=MAX_INT,
            help="Time travel: the item as of journal position POS (reads the journal).",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="TIME",
            help="Time travel: the item as of an ISO 8601 time, UTC unless it says otherwise.",
        ),
    ] = None,
) -> int:
    """Show an item from the projection: `Item1: description`. Exit 3 if not found.

    With --at or --as-of it folds the item's events from the journal instead, and
    shows its state at that point.

    Example: cqrs item get Item1 --min-position 42
    """
    return run_get(
        item_id,
        as_json=as_json,
        include_deleted=include_deleted,
        sync=sync,
        min_position=min_position,
        wait=wait,
        quiet=quiet,
        at=at,
        as_of=as_of,
    )


@item_app.command("list")
def list_(
    limit: Limit = None,
    prefix: Annotated[
        str | None,
        typer.Option("--prefix", metavar="TEXT", help="Only ids starting with TEXT."),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(
            "--after", metavar="ID", help="Only ids after ID (keyset pagination: the last id seen)."
        ),
    ] = None,
    include_deleted: IncludeDeleted = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of records.")] = False,
    nl: NewlineJson = False,
    sync: Sync = False,
    min_position: MinPosition = None,
    wait: Wait = None,
    quiet: Quiet = False,
) -> int:
    """List items in id order: ids one per line when piped, a table on a terminal.

    Example: cqrs item list --prefix order- --limit 100 --nl | jq .description
    """
    return run_list(
        limit=limit,
        prefix=prefix,
        after=after,
        include_deleted=include_deleted,
        as_json=as_json,
        nl=nl,
        sync=sync,
        min_position=min_position,
        wait=wait,
        quiet=quiet,
    )


@item_app.command("history")
def history(
    item_id: ItemId,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of changes.")] = False,
    nl: NewlineJson = False,
    sync: Sync = False,
    min_position: MinPosition = None,
    wait: Wait = None,
    quiet: Quiet = False,
) -> int:
    """Every change of an item, oldest first (tab-separated when piped:
    version, event, recorded at, position, description).

    Example: cqrs item history Item1 --json | jq '.[].event_type'
    """
    return run_history(
        item_id,
        as_json=as_json,
        nl=nl,
        sync=sync,
        min_position=min_position,
        wait=wait,
        quiet=quiet,
    )


@item_app.command("search")
def search(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="Words that must all appear.")],
    limit: Annotated[
        int,
        typer.Option(
            "--limit", metavar="N", min=0, max=MAX_INT, help="At most N results, best first."
        ),
    ] = 20,
    fts: Annotated[
        bool,
        typer.Option("--fts", help='TEXT is an FTS5 query (AND, OR, NOT, "phrase", prefix*).'),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of records.")] = False,
    nl: NewlineJson = False,
    sync: Sync = False,
    min_position: MinPosition = None,
    wait: Wait = None,
    quiet: Quiet = False,
) -> int:
    """Full-text search over live items' ids and descriptions. TEXT is taken literally
    unless --fts is given.

    Example: cqrs item search 'blue widget' --limit 5
    """
    return run_search(
        text,
        limit=limit,
        fts=fts,
        as_json=as_json,
        nl=nl,
        sync=sync,
        min_position=min_position,
        wait=wait,
        quiet=quiet,
    )
