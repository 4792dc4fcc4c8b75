"""Typer parameters declared once: those of the item commands and the global options,
built from their declarations in item_params.py (the fast path, fast.py, builds its
tables from the same declarations), and the typer-only options several commands share."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from typer._click.types import ParamType

from .item_params import ITEM_COMMANDS, Param

Command = TypeVar("Command", bound=Callable[..., object])

DEFAULT_POLL = 0.2
Poll = Annotated[
    float,
    typer.Option(
        "--poll",
        metavar="SECONDS",
        min=0.01,
        max=3600.0,
        help="With --follow: how often to look.",
    ),
]
"""`--poll SECONDS` of the commands that follow the journal (sync, events)."""

Quiet = Annotated[bool, typer.Option("-q", "--quiet", help="No messages on stderr, only errors.")]
"""`-q` after a command, as people type it: the global option's meaning (quiet())."""


def quiet(value: bool) -> None:
    """Apply a command's own `-q`: the same as the global one, given before the command."""
    if value:
        from .state import state

        state.quiet = True


def completed_as(kind: str | None) -> ParamType | None:
    """The text type whose shell completion offers what `kind` (Param.complete) names;
    None for plain text, which completes to nothing."""
    from .complete_values import ItemIdText, PathText

    if kind in ("item", "live-item"):
        return ItemIdText(live=kind == "live-item")
    if kind in ("file", "folder"):
        return PathText(folder=kind == "folder")
    return None


def typer_annotation(param: Param) -> object:
    """`Annotated[type, typer.Argument(...)]` or `Annotated[type, typer.Option(...)]`,
    as one would write it in a typer command's signature."""
    info: object
    if param.is_argument:
        info = typer.Argument(
            metavar=param.metavar,
            help=param.help,
            show_default=param.show_default,
            click_type=completed_as(param.complete),
        )
    else:
        info = typer.Option(
            *param.names,
            metavar=param.metavar,
            min=param.min,
            max=param.max,
            envvar=param.envvar,
            help=param.help,
            show_default=param.show_default,
            click_type=completed_as(param.complete),
        )
    value_type = param.type if param.is_argument or param.default is not None else param.type | None
    return Annotated[value_type, info]


def typer_signature(params: tuple[Param, ...], own: inspect.Signature) -> inspect.Signature:
    """The signature typer reads the parameters from: `params` (arguments are required,
    options default to their declared default), then the function's `own` parameters
    but for its **options."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    empty = inspect.Parameter.empty
    declared = [
        inspect.Parameter(
            p.dest,
            keyword,
            annotation=typer_annotation(p),
            default=empty if p.is_argument else p.default,
        )
        for p in params
    ]
    written = [
        p.replace(kind=keyword)
        for p in own.parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    return own.replace(parameters=[*declared, *written])


def with_params(params: tuple[Param, ...]) -> Callable[[Command], Command]:
    """Decorates `def command(**options) -> ...` so that typer sees the parameters
    declared in `params`, followed by any the function writes out itself (typer-only
    ones, such as --version); typer passes them all by name."""

    def declare(command: Command) -> Command:
        own = inspect.signature(command, eval_str=True)
        command.__signature__ = typer_signature(params, own)  # type: ignore[attr-defined]
        return command

    return declare


def declared(name: str) -> Callable[[Command], Command]:
    """`with_params` for `cqrs item NAME`: the parameters declared for it."""
    return with_params(ITEM_COMMANDS[name])
