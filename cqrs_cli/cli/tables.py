"""Records on a terminal: a table when they fit on the screen, else rows printed as they
come, through a pager (imported only when stdout is a terminal; rich only here).

Why not one rich table of everything: rich measures every row before it prints the
first, so `cqrs item list` of a million items showed nothing for 99 s and held 1.5 GB.
Here at most one screen of records is held: if they fit, a rich table (numbers right-
aligned, times to the second); if not, the same columns as plain aligned lines, widths
taken from the first screen, written row by row into a pager (as `git log` does:
CQRS_PAGER, else PAGER, else `less` with LESS=FRX; `cat` or an empty value, or
--no-pager, turn it off), so the first screen shows at once and memory stays bounded
whatever the count.
"""

from __future__ import annotations

import os
import shutil
import sys
from itertools import chain, islice

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from contextlib import AbstractContextManager
    from typing import TextIO

    from ..read.models import HistoryEntry, ItemView

    Record = ItemView | HistoryEntry

ROOM = 4
"""Lines a table takes besides its rows (borders, header) and the shell's prompt."""


class Column:
    """A column: its header, how to get its text from a record, and whether it holds
    numbers (right-aligned)."""

    __slots__ = ("cell", "header", "numeric")

    def __init__(self, header: str, cell: Callable[[Record], str], *, numeric: bool = False):
        self.header = header
        self.cell = cell
        self.numeric = numeric


def to_the_second(timestamp: str) -> str:
    """`2024-05-01T12:00:00.123456Z` as `2024-05-01 12:00:00Z`: tables show times to the
    second (JSON and piped output keep them whole)."""
    date, t, rest = timestamp.partition("T")
    if not t:
        return timestamp
    clock, dot, fraction = rest.partition(".")
    zone = fraction.lstrip("0123456789") if dot else ""
    return f"{date} {clock}{zone}"


def _safe(text: str) -> str:
    from ..text import printable

    return printable(text)


def _description(record: Record) -> str:
    text = record.description
    shown = "" if text is None else _safe(text)
    if getattr(record, "deleted", False):
        shown += " (deleted)"
    return shown


ITEM_COLUMNS = (
    Column("id", lambda item: _safe(item.item_id)),
    Column("version", lambda item: str(item.version), numeric=True),
    Column("updated", lambda item: to_the_second(item.updated_at)),  # type: ignore[union-attr]
    Column("description", _description),
)
HISTORY_COLUMNS = (
    Column("version", lambda entry: str(entry.version), numeric=True),
    Column("event", lambda entry: entry.event_type),  # type: ignore[union-attr]
    Column("recorded at", lambda entry: to_the_second(entry.recorded_at)),  # type: ignore[union-attr]
    Column("position", lambda entry: str(entry.position), numeric=True),
    Column("description", _description),
)


def items_table(items: Iterable[ItemView], *, pager: bool = True) -> None:
    show(ITEM_COLUMNS, items, pager=pager)


def history_table(entries: Iterable[HistoryEntry], *, pager: bool = True) -> None:
    show(HISTORY_COLUMNS, entries, pager=pager)


def show(
    columns: tuple[Column, ...],
    records: Iterable[Record],
    *,
    pager: bool = True,
    lines: int | None = None,
    out: TextIO | None = None,
) -> None:
    """Records on a terminal of `lines` lines (the terminal's own by default): a rich
    table if they fit, else streamed lines (through the pager when `pager` and one is
    set). Holds at most one screen of records."""
    height = shutil.get_terminal_size().lines if lines is None else lines
    screen = max(height - ROOM, 1)
    records = iter(records)
    first = list(islice(records, screen + 1))
    if len(first) <= screen:
        _rich_table(columns, first, out)
        return
    with paged(pager, out) as stream:
        stream_rows(columns, chain(first, records), first, stream)


def _rich_table(columns: tuple[Column, ...], records: list[Record], out: TextIO | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(header_style="bold")
    for column in columns:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for record in records:
        style = "dim" if getattr(record, "deleted", False) else None
        # printable() (in each cell) first: rich.markup.escape lets ESC through.
        table.add_row(*(escape(column.cell(record)) for column in columns), style=style)
    Console(file=out).print(table)


def stream_rows(
    columns: tuple[Column, ...],
    records: Iterator[Record],
    sample: list[Record],
    out: TextIO,
) -> None:
    """One line per record, written as it is read: columns two spaces apart, as wide
    as their widest cell in `sample` (the first screen; a wider cell later pushes its
    row, the last column is never cut), numbers right-aligned."""
    from rich.cells import cell_len

    widths = [
        max([cell_len(column.header)] + [cell_len(column.cell(r)) for r in sample])
        for column in columns
    ]
    last = len(columns) - 1

    def line(cells: list[str]) -> str:
        parts = []
        for i, (column, text) in enumerate(zip(columns, cells, strict=True)):
            pad = " " * max(widths[i] - cell_len(text), 0)
            if i == last:
                parts.append(text)
            else:
                parts.append(pad + text if column.numeric else text + pad)
        return "  ".join(parts).rstrip() + "\n"

    write = out.write
    write(line([column.header for column in columns]))
    for record in records:
        write(line([column.cell(record) for column in columns]))


def pager_command() -> str | None:
    """The pager to run: CQRS_PAGER, else PAGER, else `less` if there is one; None for
    none (`cat` or an empty value)."""
    for name in ("CQRS_PAGER", "PAGER"):
        value = os.environ.get(name)
        if value is not None:
            value = value.strip()
            return None if value in ("", "cat") else value
    return "less" if shutil.which("less") else None


def _real_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def paged(wanted: bool, out: TextIO | None = None) -> AbstractContextManager[TextIO]:
    """`with paged(wanted) as stream:` the pager's input (when `wanted`, a pager is set
    and stdout is a real terminal), else `out` or stdout."""
    from contextlib import nullcontext

    command = pager_command() if wanted and out is None and _real_terminal() else None
    if command is None:
        return nullcontext(sys.stdout if out is None else out)
    return _Pager(command)


class _Pager:
    """A pager process reading what is written; its going away (q) is a closed stdout
    (a quiet exit 0). While it runs, Ctrl-C is the pager's, as with git."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __enter__(self) -> TextIO:
        import signal
        import subprocess

        from .output import GuardedStdout

        env = dict(os.environ)
        env.setdefault("LESS", "FRX")
        env.setdefault("LV", "-c")
        sys.stdout.flush()
        self.process = subprocess.Popen(
            self.command,
            shell=True,
            stdin=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
            errors="surrogateescape",
        )
        self.interrupt: object = None
        try:
            self.interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread
            pass
        assert self.process.stdin is not None
        return GuardedStdout(self.process.stdin)  # type: ignore[arg-type, return-value]

    def __exit__(self, *exc: object) -> None:
        import signal

        assert self.process.stdin is not None
        try:
            self.process.stdin.close()
        except OSError:  # the pager is gone: what was left unread does not matter
            pass
        self.process.wait()
        if self.interrupt is not None:
            signal.signal(signal.SIGINT, self.interrupt)  # type: ignore[arg-type]
