"""`cqrs item ...`: the item commands as typer sees them (help, parsing). Their
behaviour lives in write_commands.py, shared with the fast path."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import CorrelationId, DryRun, ExpectVersion, IdempotencyKey, ItemId, Json
from .write_commands import run_write

item_app = typer.Typer(
    help="Create, update and delete items (the write side).",
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
    )


@item_app.command("delete")
def delete(
    item_id: ItemId,
    expect_version: ExpectVersion = None,
    idempotency_key: IdempotencyKey = None,
    correlation_id: CorrelationId = None,
    dry_run: DryRun = False,
    as_json: Json = False,
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
    )
