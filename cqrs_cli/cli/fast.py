"""The fast path: run the hot commands without importing typer.

`import typer` alone costs about 45 ms here, three times the interpreter's own start-up,
and scripts call `cqrs item create` in loops. So argv for the hot commands is parsed by
this small table-driven parser, which accepts exactly the documented options and
forms. Anything it does not fully understand (help, a typo, a bad number, an unknown
option) returns None and the typer application handles the call, so every error
message and all help come from one place. tests/test_cli_fast_path.py runs the same
argv through both parsers and requires identical results.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

GLOBAL_VALUES = {"--journal": "journal", "--projection": "projection", "--home": "home"}
GLOBAL_FLAGS = {"--debug": "debug", "-q": "quiet", "--quiet": "quiet"}

_WRITE_VALUES = {
    "--expect-version": "expect_version",
    "--idempotency-key": "idempotency_key",
    "--correlation-id": "correlation_id",
}
_QUIET = {"-q": "quiet", "--quiet": "quiet"}
_WRITE_FLAGS = {"--dry-run": "dry_run", "--json": "as_json", "--sync": "sync", **_QUIET}
_READ_VALUES = {"--min-position": "min_position", "--wait": "wait"}
_READ_FLAGS = {
    "--json": "as_json",
    "--sync": "sync",
    "--include-deleted": "include_deleted",
    **_QUIET,
}

MAX_INT = 2**63 - 1
"""The largest count or position: SQLite's integers are 64-bit."""
MAX_WAIT = 86400.0 * 366


def _count(text: str) -> int:
    value = int(text)
    if not 0 <= value <= MAX_INT:
        raise ValueError(text)
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= MAX_WAIT:
        raise ValueError(text)
    return value


# Options whose values are numbers; a value that does not convert, or is out of range,
# goes to typer, which reports it (the typer options declare the same ranges).
_CONVERT: dict[str, Callable[[str], object]] = {
    "expect_version": _count,
    "min_position": _count,
    "limit": _count,
    "wait": _seconds,
}


class Spec:
    __slots__ = ("flags", "positional", "run", "values")

    def __init__(
        self,
        positional: tuple[str, ...],
        values: dict[str, str],
        flags: dict[str, str],
        run: Callable[..., int],
    ) -> None:
        self.positional = positional
        self.values = values
        self.flags = flags
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


COMMANDS: dict[str, Spec] = {
    "create": Spec(
        ("item_id",),
        {"-d": "description", "--description": "description", **_WRITE_VALUES},
        _WRITE_FLAGS,
        _write("create"),
    ),
    "update": Spec(("item_id", "description"), _WRITE_VALUES, _WRITE_FLAGS, _write("update")),
    "delete": Spec(("item_id",), _WRITE_VALUES, _WRITE_FLAGS, _write("delete")),
    "get": Spec(("item_id",), _READ_VALUES, _READ_FLAGS, _get),
    "list": Spec(
        (),
        {**_READ_VALUES, "--limit": "limit", "--prefix": "prefix", "--after": "after"},
        {**_READ_FLAGS, "--nl": "nl"},
        _list,
    ),
}


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
    options: dict[str, object] = {}
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
                convert = _CONVERT.get(key)
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
    options.update(zip(spec.positional, positional, strict=True))
    for key, value in globals_.items():
        setattr(state, key, value)
    for flag in global_flags:
        setattr(state, flag, True)
    return spec.run(**options)
