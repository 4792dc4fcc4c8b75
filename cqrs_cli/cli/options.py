"""Options shared by several typer commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

ExpectVersion = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        metavar="N",
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
