"""The item commands' typer parameters, built from their declarations in item_params.py
(the fast path, fast.py, builds its tables from the same declarations)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from .item_params import ITEM_COMMANDS, Param

Command = TypeVar("Command", bound=Callable[..., int])


def typer_annotation(param: Param) -> object:
    """`Annotated[type, typer.Argument(...)]` or `Annotated[type, typer.Option(...)]`,
    as one would write it in a typer command's signature."""
    info: object
    if param.is_argument:
        info = typer.Argument(
            metavar=param.metavar, help=param.help, show_default=param.show_default
        )
    else:
        info = typer.Option(
            *param.names,
            metavar=param.metavar,
            min=param.min,
            max=param.max,
            help=param.help,
            show_default=param.show_default,
        )
    value_type = param.type if param.is_argument or param.default is not None else param.type | None
    return Annotated[value_type, info]


def typer_signature(params: tuple[Param, ...]) -> inspect.Signature:
    """The signature typer reads the parameters from: arguments are required, options
    default to their declared default."""
    empty = inspect.Parameter.empty
    return inspect.Signature(
        [
            inspect.Parameter(
                p.dest,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=typer_annotation(p),
                default=empty if p.is_argument else p.default,
            )
            for p in params
        ],
        return_annotation=int,
    )


def declared(name: str) -> Callable[[Command], Command]:
    """Decorates `def command(**options) -> int` so that typer sees the parameters
    declared for `cqrs item NAME`; typer passes them all by name."""
    signature = typer_signature(ITEM_COMMANDS[name])

    def declare(command: Command) -> Command:
        command.__signature__ = signature  # type: ignore[attr-defined]
        return command

    return declare
