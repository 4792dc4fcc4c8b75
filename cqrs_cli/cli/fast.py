"""The fast path: run the hot commands without importing typer.

`import typer` alone costs about 45 ms here, three times the interpreter's own start-up,
and scripts call `cqrs item create` in loops. So argv for the hot commands is parsed by
this small table-driven parser, which accepts exactly the documented options and
forms. Anything it does not fully understand (help, a typo, a bad number, an unknown
option) returns None and the typer application handles the call, so every error
message and all help come from one place. tests/test_cli_fast_path.py runs the same
argv through both parsers and requires identical results.

The tables of the hot commands and of the global options are built from their
declarations in item_params.py, which typer's parameters are built from too.
"""

from __future__ import annotations

from .item_params import GLOBAL_OPTIONS, ITEM_COMMANDS, Param, misuse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def _dests(options: Iterable[Param], *, flags: bool) -> dict[str, str]:
    """Each name of the flags (flags=True) or of the options taking a value among
    `options`, mapped to the option's dest."""
    return {name: p.dest for p in options if p.is_flag == flags for name in p.names}


GLOBAL_VALUES = _dests(GLOBAL_OPTIONS, flags=False)
GLOBAL_FLAGS = _dests(GLOBAL_OPTIONS, flags=True)


class Number:
    """Converts an option's value as typer does (int() or float()); a value out of the
    declared range raises ValueError too, so that typer reports it."""

    __slots__ = ("max", "min", "type")

    def __init__(self, param: Param) -> None:
        self.type = param.type
        self.min = param.min
        self.max = param.max

    def __call__(self, text: str) -> object:
        value = self.type(text)
        low, high = self.min, self.max
        if not ((low is None or low <= value) and (high is None or value <= high)):
            raise ValueError(text)  # NaN too: typer decides about it
        return value


class Spec:
    """A hot command's tables, built from its declared parameters (item_params.py):
    `values` and `flags` map each option name the fast path takes to its parameter,
    `convert` the numeric ones to their conversion, `defaults` each option to its
    default (what typer passes when the option is not given)."""

    __slots__ = ("convert", "defaults", "flags", "name", "positional", "run", "values")

    def __init__(self, name: str, run: Callable[..., int]) -> None:
        params = ITEM_COMMANDS[name]
        self.name = name
        options = [p for p in params if not p.is_argument]
        taken = [p for p in options if p.fast]
        self.positional = tuple(p.dest for p in params if p.is_argument)
        self.values = _dests(taken, flags=False)
        self.flags = _dests(taken, flags=True)
        self.convert = {p.dest: Number(p) for p in taken if p.type in (int, float)}
        self.defaults = {p.dest: p.default for p in options}
        self.run = run


def _write(kind: str) -> Callable[..., int]:
    def run(**options: object) -> int:
        from .write_commands import run_write

        return run_write(kind, **options)  # type: ignore[arg-type]

    return run


def _get(**options: object) -> int:
    from .read_commands import run_get

    return run_get(**options)  # type: ignore[arg-type]


def _list(**options: object) -> int:
    from .read_commands import run_list

    return run_list(**options)  # type: ignore[arg-type]


_RUN: dict[str, Callable[..., int]] = {
    "create": _write("create"),
    "update": _write("update"),
    "delete": _write("delete"),
    "get": _get,
    "list": _list,
}
COMMANDS: dict[str, Spec] = {name: Spec(name, run) for name, run in _RUN.items()}
"""The hot commands, `cqrs item NAME`."""


def _split(token: str) -> tuple[str, str | None]:
    if token.startswith("--") and "=" in token:
        name, _, value = token.partition("=")
        return name, value
    return token, None


def dispatch(argv: list[str]) -> int | None:
    """Run argv if it is a hot command in a form this parser knows; else None."""
    from .state import state

    i, n = 0, len(argv)
    globals_: dict[str, str] = {}
    global_flags: set[str] = set()
    while i < n and argv[i].startswith("-"):
        name, inline = _split(argv[i])
        if name in GLOBAL_FLAGS and inline is None:
            global_flags.add(GLOBAL_FLAGS[name])
            i += 1
        elif name in GLOBAL_VALUES:
            if inline is None:
                if i + 1 >= n:
                    return None
                inline, i = argv[i + 1], i + 1
            globals_[GLOBAL_VALUES[name]] = inline
            i += 1
        else:
            return None
    if n - i < 2 or argv[i] != "item" or argv[i + 1] not in COMMANDS:
        return None
    spec = COMMANDS[argv[i + 1]]
    options = dict(spec.defaults)
    positional: list[str] = []
    i += 2
    while i < n:
        token = argv[i]
        if token == "--":
            positional.extend(argv[i + 1 :])
            break
        if token.startswith("-") and token != "-":
            name, inline = _split(token)
            if name in spec.flags and inline is None:
                options[spec.flags[name]] = True
            elif name in spec.values:
                if inline is None:
                    if i + 1 >= n:
                        return None
                    inline, i = argv[i + 1], i + 1
                key = spec.values[name]
                convert = spec.convert.get(key)
                if convert is None:
                    options[key] = inline
                else:
                    try:
                        options[key] = convert(inline)
                    except ValueError:
                        return None
            else:
                return None
        else:
            positional.append(token)
        i += 1
    if len(positional) != len(spec.positional):
        return None
    if misuse(spec.name, options) is not None:
        return None  # options that contradict each other: typer says so
    options.update(zip(spec.positional, positional, strict=True))
    for key, value in globals_.items():
        setattr(state, key, value)
    for flag in global_flags:
        setattr(state, flag, True)
    return spec.run(**options)
