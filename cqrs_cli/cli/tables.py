"""Tables for a terminal (rich is imported only here, only when stdout is a terminal)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..read.models import HistoryEntry, ItemView


def _safe(text: str) -> str:
    from rich.markup import escape

    from ..text import printable

    # printable() first: rich.markup.escape lets ESC and other controls through.
    return escape(printable(text))


def _print(table: object) -> None:
    from rich.console import Console

    Console().print(table)


def items_table(items: list[ItemView]) -> None:
    from rich.table import Table

    table = Table("id", "description", "version", "updated", header_style="bold")
    for item in items:
        style = "dim" if item.deleted else None
        description = _safe(item.description) + (" (deleted)" if item.deleted else "")
        table.add_row(
            _safe(item.item_id), description, str(item.version), item.updated_at, style=style
        )
    _print(table)


def history_table(entries: list[HistoryEntry]) -> None:
    from rich.table import Table

    table = Table("version", "event", "recorded at", "position", "description")
    for entry in entries:
        table.add_row(
            str(entry.version),
            entry.event_type,
            entry.recorded_at,
            str(entry.position),
            "" if entry.description is None else _safe(entry.description),
        )
    _print(table)
