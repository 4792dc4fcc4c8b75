"""Options shared by several typer commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from .fast import MAX_INT, MAX_WAIT

ExpectVersion = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        metavar="N",
        min=0,
        max=MAX_INT,
        help="Fail with exit 4 unless the item is at version N (0: never written).",
        show_default=False,
    ),
]
IdempotencyKey = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        metavar="KEY",
        help="Apply at most once: a retry with the same KEY appends nothing and exits 0.",
        show_default=False,
    ),
]
CorrelationId = Annotated[
    str | None,
    typer.Option(
        "--correlation-id",
        metavar="ID",
        help="Stored in the events' metadata, to tie them to a wider operation.",
        show_default=False,
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show the events it would append; write nothing.")
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
ItemId = Annotated[str, typer.Argument(metavar="ID", help="The item's id.", show_default=False)]

IncludeDeleted = Annotated[
    bool, typer.Option("--include-deleted", help="Deleted items too (flagged as deleted).")
]
Sync = Annotated[
    bool, typer.Option("--sync", help="Catch the projection up first (read your writes).")
]
SyncAfterWrite = Annotated[
    bool, typer.Option("--sync", help="Catch the projection up afterwards (read your writes).")
]
MinPosition = Annotated[
    int | None,
    typer.Option(
        "--min-position",
        metavar="POS",
        min=0,
        max=MAX_INT,
        help="Wait until the projection reached POS (a write's position); else exit 5.",
        show_default=False,
    ),
]
Wait = Annotated[
    float | None,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        min=0.0,
        max=MAX_WAIT,
        help="How long --min-position waits. [default: 5]",
        show_default=False,
    ),
]
Quiet = Annotated[
    bool, typer.Option("-q", "--quiet", help="No note on stderr when the projection is behind.")
]
Limit = Annotated[
    int | None,
    typer.Option(
        "--limit", metavar="N", min=0, max=MAX_INT, help="At most N items.", show_default=False
    ),
]
NewlineJson = Annotated[
    bool, typer.Option("--nl", help="One JSON object per line (NDJSON), streamed.")
]
