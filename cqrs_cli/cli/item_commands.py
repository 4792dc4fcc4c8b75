"""`cqrs item ...`: the item commands as typer sees them (help, parsing). Their
parameters are declared in item_params.py (the fast path reads the same declarations);
their behaviour lives in write_commands.py and read_commands.py, shared with the fast
path."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand

from .item_params import MAX_INT, misuse
from .options import declared
from .read_commands import run_get, run_history, run_list, run_search
from .write_commands import run_write


class ItemCommand(TyperCommand):
    """typer's command, with a plainer help: `ID` rather than `{ID}` in the usage line,
    no `<str>` beside an argument, and `[x>=0]` rather than a 19-digit upper bound
    beside a count (the bound stays checked, and its error message says it in full)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [
            piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
            for piece in super().collect_usage_pieces(ctx)
        ]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from typer._click.types import FloatRange, IntRange, StringParamType

        class _Text(StringParamType):
            def get_metavar(self, param: Any, ctx: Any) -> str | None:
                return ""

        shown: dict[int, object] = {}
        for param in self.params:
            kind = param.type
            if isinstance(kind, IntRange) and kind.min == 0 and kind.max == MAX_INT:
                shown[id(param)], param.type = kind, IntRange(min=0)
            elif isinstance(kind, FloatRange) and kind.min == 0 and kind.max is not None:
                shown[id(param)], param.type = kind, FloatRange(min=0)
            elif param.param_type_name == "argument" and isinstance(kind, StringParamType):
                shown[id(param)], param.type = kind, _Text()
        try:
            super().format_help(ctx, formatter)
        finally:
            for param in self.params:
                if id(param) in shown:
                    param.type = shown[id(param)]  # type: ignore[assignment]


def _checked(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options, once they are known not to contradict each other (else a usage
    error naming both, as the fast path leaves such a command line to typer)."""
    from typer._click.exceptions import UsageError

    message = misuse(name, options)
    if message is not None:
        raise UsageError(message)
    return options


item_app = typer.Typer(
    help=(
        "Items: create, update and delete them (appending to the journal); get, list, "
        "search them and see their history (reading the projection)."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@item_app.command("create", cls=ItemCommand)
@declared("create")
def create(**options: Any) -> int:
    """Create an item: appends ItemCreated. Exit 4 if the item already exists.

    A deleted item may be created again; its history goes on.

    Example: cqrs item create Item1 -d 'First item'
    """
    return run_write("create", **options)


@item_app.command("update", cls=ItemCommand)
@declared("update")
def update(**options: Any) -> int:
    """Change an item's description: appends ItemUpdated. Exit 3 if there is no such
    live item; nothing is appended when the description is already that.

    Example: cqrs item update Item1 'Updated Description'
    """
    return run_write("update", **options)


@item_app.command("delete", cls=ItemCommand)
@declared("delete")
def delete(**options: Any) -> int:
    """Delete an item: appends ItemDeleted. Exit 3 if there is no such live item.

    Example: cqrs item delete Item1 --expect-version 2
    """
    return run_write("delete", **options)


@item_app.command("get", cls=ItemCommand)
@declared("get")
def get(**options: Any) -> int:
    """Show an item from the projection: `Item1: description`. Exit 3 if not found.

    With --at or --as-of it folds the item's events from the journal instead, and
    shows its state at that point.

    Example: cqrs item get Item1 --min-position 42
    """
    return run_get(**_checked("get", options))


@item_app.command("list", cls=ItemCommand)
@declared("list")
def list_(**options: Any) -> int:
    """List items in id order: ids one per line when piped, a table on a terminal.

    Example: cqrs item list --prefix order- --limit 100 --nl | jq .description
    """
    return run_list(**_checked("list", options))


@item_app.command("history", cls=ItemCommand)
@declared("history")
def history(**options: Any) -> int:
    """Every change of an item, oldest first (tab-separated when piped:
    version, event, recorded at, position, description).

    Streamed in bounded memory, however long the history; a table on a terminal shows
    at most --limit, or 1000, changes. Paging by version: forward with --after (the
    last version seen); backward with --newest-first and --before (the last version
    seen). Exit 3 if the item has no history; a page past its end is empty.

    Example: cqrs item history Item1 --newest-first --limit 10 --json | jq '.[].event_type'
    """
    return run_history(**_checked("history", options))


@item_app.command("search", cls=ItemCommand)
@declared("search")
def search(**options: Any) -> int:
    """Full-text search over live items' ids and descriptions: items in which each
    word of TEXT starts a word ('blu wid' finds "Blue widget"), best first. TEXT is
    taken literally unless --fts is given.

    Example: cqrs item search 'blue wid' --limit 5
    """
    return run_search(**_checked("search", options))
