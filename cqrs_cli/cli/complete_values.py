"""What a shell completes for one argument or option value: the parameter types that
know it. They convert exactly as typer's plain text does (they are text); only their
`shell_complete` differs, and it never fails loudly: on any error it offers nothing.

- ItemIdText: item ids from the projection starting with what was typed (a prefix
  range on the items table's unique index, through QueryService: read-only, at most
  MAX_IDS of them);
- Choices: a fixed set of values (`events --type`), with a help text per value;
- PathText: a file or folder name, completed by the shell itself;
- and any other text completes to nothing: never to file names where none goes.

Each CompletionItem's `type` ("plain", "file" or "dir") tells the script whether the
shell should list the candidates given or complete a path itself (completion.py).
"""

from __future__ import annotations

from typing import Any

from typer._click.shell_completion import CompletionItem
from typer._click.types import StringParamType

MAX_IDS = 200
"""Candidates offered at most: a shell shows no more usefully, and the query stays cheap
on a projection of millions of items."""


class ItemIdText(StringParamType):
    """An item id: completes the ids in the projection that start with the typed text
    (`live`: not deleted ones)."""

    name = "text"

    def __init__(self, *, live: bool) -> None:
        self.live = live

    def shell_complete(self, ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(item_id) for item_id in item_ids(ctx, incomplete, live=self.live)]


class Choices(StringParamType):
    """One of a fixed set of values, each with a help text. Converts as text: the
    command checks the value itself, with its own message (a usage error listing them)."""

    name = "text"

    def __init__(self, choices: dict[str, str]) -> None:
        self.choices = choices

    def shell_complete(self, ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
        return [
            CompletionItem(value, help=help)
            for value, help in self.choices.items()
            if value.startswith(incomplete)
        ]


class PathText(StringParamType):
    """A file (`folder=False`) or folder path, as text: the shell completes it."""

    name = "text"

    def __init__(self, *, folder: bool = False) -> None:
        self.folder = folder

    def shell_complete(self, ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
        return [CompletionItem(incomplete, type="dir" if self.folder else "file")]


def item_ids(ctx: Any, prefix: str, *, live: bool) -> list[str]:
    """Ids in the projection of the store the command line names (its --home,
    --journal, --projection, else the environment), starting with `prefix`; [] on any
    error (no projection yet, a locked or foreign file, a prefix no id can have)."""
    try:
        from ..paths import StorePaths
        from ..read.query_service import QueryService

        root = ctx.find_root().params if ctx is not None else {}
        paths = StorePaths.resolve(root.get("home"), root.get("journal"), root.get("projection"))
        with QueryService(paths) as queries:
            return list(
                queries.item_ids(prefix=prefix or None, limit=MAX_IDS, include_deleted=not live)
            )
    except Exception:
        # Completion runs at every Tab: an error message would land in the middle of
        # the user's command line. Offering nothing is the quiet way to say "none".
        return []
