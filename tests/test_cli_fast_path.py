"""The fast path (cqrs_cli/cli/fast.py) must be invisible: every command line gives the
same exit code, stdout and stderr whether it parses the line or typer does. And the hot
commands must not import the heavy modules the fast path exists to avoid."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from cqrs_cli.cli import fast, item_commands, read_commands, write_commands
from cqrs_cli.cli.item_params import EXCLUSIVE, ITEM_COMMANDS, NEEDS, Param
from cqrs_cli.cli.main import run
from cqrs_cli.cli.state import CliState, state
from cqrs_cli.write.command_service import CommandService


class Case(NamedTuple):
    argv: list[str]
    fast: bool  # whether the fast path should run it (else it hands it to typer)
    existing: tuple[str, ...] = ()  # items created before the command
    stdin: bytes | None = None


# {store} is the test's fresh store folder.
CASES: dict[str, Case] = {
    "create": Case(["item", "create", "Item1"], True),
    "create-description-after": Case(["item", "create", "Item1", "-d", "First item"], True),
    "create-options-before-id": Case(
        ["item", "create", "--json", "--description", "x", "Item1"], True
    ),
    "create-inline-value": Case(["item", "create", "Item1", "--description=a=b"], True),
    "create-empty-inline": Case(["item", "create", "Item1", "--description="], True),
    "create-double-dash": Case(["item", "create", "-d", "x", "--", "-dash-id"], True),
    "create-dash-id": Case(["item", "create", "-"], True),
    "create-stdin": Case(["item", "create", "Item1", "-d", "-"], True, stdin=b"from\nstdin\n"),
    "create-exists": Case(["item", "create", "Item1"], True, existing=("Item1",)),
    "create-json": Case(["item", "create", "Item1", "--json"], True),
    "create-dry-run": Case(["item", "create", "Item1", "--dry-run"], True),
    "create-key": Case(["item", "create", "Item1", "--idempotency-key", "k"], True),
    "create-empty-key": Case(["item", "create", "Item1", "--idempotency-key="], True),
    "create-invalid-id": Case(["item", "create", "bad\x1bid"], True),
    "create-surrogate-id": Case(["item", "create", "bad\udcffid"], True),
    "update": Case(["item", "update", "Item1", "new"], True, existing=("Item1",)),
    "update-options-first": Case(
        ["item", "update", "--expect-version", "1", "Item1", "new"], True, existing=("Item1",)
    ),
    "update-expect-mismatch": Case(
        ["item", "update", "Item1", "new", "--expect-version=7"], True, existing=("Item1",)
    ),
    # Out of range: the fast path leaves it to typer, whose option declares the range.
    "update-negative-version": Case(
        ["item", "update", "Item1", "x", "--expect-version", "-1"], False
    ),
    "list-huge-limit": Case(["item", "list", "--limit", "9223372036854775808"], False),
    "update-not-found": Case(["item", "update", "Item1", "new"], True),
    "update-stdin": Case(["item", "update", "Item1", "-"], True, ("Item1",), b"piped"),
    "delete": Case(["item", "delete", "Item1", "--json"], True, existing=("Item1",)),
    "global-journal": Case(["--journal", "{store}/j.db", "item", "create", "Item1"], True),
    "global-journal-inline": Case(["--journal={store}/j.db", "-q", "item", "create", "A"], True),
    "global-home-quiet": Case(["-q", "--home", "{store}/h", "item", "create", "Item1"], True),
    "global-same-files": Case(
        ["--journal", "{store}/x.db", "--projection", "{store}/x.db", "item", "create", "A"], True
    ),
    "global-debug": Case(["--debug", "item", "delete", "Item1"], True),
    "quiet-after-command": Case(["item", "update", "Item1", "new", "-q"], True, ("Item1",)),
    "sync-after-write": Case(["item", "create", "Item1", "--sync", "--quiet"], True),
    # Everything below is for typer: errors and forms the fast path does not parse.
    "bad-int": Case(["item", "create", "Item1", "--expect-version", "abc"], False),
    "bad-int-inline": Case(["item", "create", "Item1", "--expect-version="], False),
    "unknown-option": Case(["item", "create", "Item1", "--colour"], False),
    "unknown-global": Case(["--colour", "item", "create", "Item1"], False),
    "global-value-after-command": Case(["item", "create", "Item1", "--home", "x"], False),
    "missing-id": Case(["item", "create"], False),
    "missing-description": Case(["item", "update", "Item1"], False),
    "missing-value": Case(["item", "create", "Item1", "-d"], False),
    "missing-global-value": Case(["--journal"], False),
    "extra-argument": Case(["item", "delete", "Item1", "Item2"], False),
    "extra-after-double-dash": Case(["item", "create", "Item1", "--", "-d", "x"], False),
    "flag-with-value": Case(["item", "create", "Item1", "--json=yes"], False),
    "short-attached-value": Case(["item", "create", "Item1", "-dattached"], False),
    "unknown-command": Case(["item", "rename", "Item1"], False),
    "version": Case(["--version"], False),
}


def normalise(text: str, store: Path) -> str:
    """The output with the store's path and per-run values (ids, times, hashes) masked."""
    text = text.replace(str(store), "<store>")
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            line = json.dumps(mask(json.loads(line)), sort_keys=True)
        lines.append(line)
    return "\n".join(lines)


VOLATILE = {"event_id", "recorded_at", "command_id", "prev_hash", "hash"}


def mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "*" if k in VOLATILE else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


class Outcome(NamedTuple):
    code: int
    out: str
    err: str
    fast_ran: bool


def run_in_fresh_store(
    case: Case,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    force_typer: bool,
) -> Outcome:
    monkeypatch.setenv("CQRS_HOME", str(store))
    with CommandService(store) as service:
        for item_id in case.existing:
            service.create_item(item_id, "existing")
    for name in ("journal", "projection", "home"):
        monkeypatch.setattr(state, name, None)
    monkeypatch.setattr(state, "quiet", False)
    monkeypatch.setattr(state, "debug", False)
    if case.stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin)))
    results: list[int | None] = []
    real_dispatch = fast.dispatch

    def spy(argv: list[str]) -> int | None:
        result = None if force_typer else real_dispatch(argv)
        results.append(result)
        return result

    monkeypatch.setattr(fast, "dispatch", spy)
    capsys.readouterr()
    code = run([arg.replace("{store}", str(store)) for arg in case.argv])
    out, err = capsys.readouterr()
    # The fast path ran the command if it returned a code or raised (a typed error).
    return Outcome(code, normalise(out, store), normalise(err, store), results != [None])


# --- Generated cases: every hot command, every option it declares, every form ---------------

ARGUMENT_VALUES = {"item_id": "Item1", "description": "new"}
"""What each hot command's positional arguments are given (update and delete find Item1)."""


def number_text(param: Param, value: float) -> str:
    return str(param.type(value))


def values_for(param: Param) -> tuple[list[str], list[str]]:
    """(values the fast path takes for a value option, values it leaves to typer).
    The first taken value is the quick one to run a command with."""
    if param.type is str:
        return ["x", "", "-x", "a=b"], []
    assert param.type in (int, float) and param.min is not None and param.max is not None
    taken = [number_text(param, param.min), number_text(param, param.max)]
    left = [number_text(param, param.min - 1), number_text(param, param.max + 1), "abc", ""]
    if param.type is float:
        left.append("nan")
    return taken, left


class Generated(NamedTuple):
    name: str
    argv: list[str]
    fast: bool
    run: bool  # also run through both parsers, end to end (the quick values only)


def generated_for(command: str) -> list[Generated]:
    """Command lines for `cqrs item COMMAND`, made from its declared parameters: each flag,
    each value option with each value (separate and inline), out of range, not a number,
    missing; before and after the arguments; repeated; wrong forms."""
    params = ITEM_COMMANDS[command]
    by_dest = {p.dest: p for p in params}
    arguments = [ARGUMENT_VALUES[p.dest] for p in params if p.is_argument]
    base = ["item", command]
    cases: list[Generated] = []

    def given(param: Param) -> list[str]:
        return [param.names[-1]] if param.is_flag else [param.names[-1], values_for(param)[0][0]]

    def needed(param: Param) -> list[str]:
        """What an option that does nothing alone is given with (--wait: --min-position)."""
        return [
            arg
            for option, other in NEEDS
            if option == param.dest and other in by_dest
            for arg in given(by_dest[other])
        ]

    def add(label: str, argv: list[str], fast_: bool, *, run: bool = False) -> None:
        cases.append(Generated(f"{command} {label}", argv, fast_, run))

    add("(nothing)", [*base, *arguments], True, run=True)
    if arguments:
        add("missing-argument", [*base, *arguments[:-1]], False)
    add("extra-argument", [*base, *arguments, "extra"], False)
    add("help", [*base, *arguments, "--help"], False)
    add("unknown-option", [*base, *arguments, "--no-such-option"], False)
    for param in params:
        if param.is_argument:
            continue
        arguments = [ARGUMENT_VALUES[p.dest] for p in params if p.is_argument] + needed(param)
        for name in param.names:
            long = name.startswith("--")
            if param.is_flag:
                add(name, [*base, *arguments, name], param.fast, run=True)
                add(f"{name} first", [*base, name, *arguments], param.fast)
                add(f"{name} twice", [*base, *arguments, name, name], param.fast)
                add(f"{name}=1", [*base, *arguments, f"{name}=1"], False)
                continue
            taken, left = values_for(param)
            for i, value in enumerate(taken):
                quick = i == 0
                add(f"{name} {value!r}", [*base, *arguments, name, value], param.fast, run=quick)
                add(f"{name} {value!r} first", [*base, name, value, *arguments], param.fast)
                if long:
                    inline = f"{name}={value}"
                    add(inline, [*base, *arguments, inline], param.fast, run=quick)
                else:
                    add(f"{name}{value}", [*base, *arguments, f"{name}{value}"], False)
                    add(f"{name}={value}", [*base, *arguments, f"{name}={value}"], False)
            add(f"{name} twice", [*base, *arguments, name, taken[-1], name, taken[0]], param.fast)
            for value in left:
                add(f"{name} {value!r}", [*base, *arguments, name, value], False, run=bool(value))
                if long:
                    add(f"{name}={value}", [*base, *arguments, f"{name}={value}"], False)
            add(f"{name} (no value)", [*base, *arguments, name], False, run=True)
    arguments = [ARGUMENT_VALUES[p.dest] for p in params if p.is_argument]
    everything = [*base, *arguments]
    left_out = {second for first, second in EXCLUSIVE.get(command, ()) if by_dest[first].fast}
    for param in params:
        if param.fast and not param.is_argument and param.dest not in left_out:
            everything += [param.names[-1]] if param.is_flag else [param.names[-1], "0"]
    add("every option", everything, True)
    # Options that contradict each other, or one that does nothing without another:
    # usage errors, which the fast path leaves to typer.
    for first, second in EXCLUSIVE.get(command, ()):
        both = [*given(by_dest[first]), *given(by_dest[second])]
        add(f"{first} with {second}", [*base, *arguments, *both], False, run=True)
    for option, other in NEEDS:
        if option in by_dest and other in by_dest:
            alone = given(by_dest[option])
            add(f"{option} without {other}", [*base, *arguments, *alone], False, run=True)
    return cases


def generated_globals() -> list[Generated]:
    """Each global option the fast path takes, before a hot command."""
    command = ["item", "list"]
    cases = [
        Generated(f"global {name}", [name, *command], True, False) for name in fast.GLOBAL_FLAGS
    ]
    for name in fast.GLOBAL_VALUES:
        cases += [
            Generated(f"global {name} v", [name, "{store}/v", *command], True, True),
            Generated(f"global {name}=v", [f"{name}={{store}}/v", *command], True, False),
            Generated(f"global {name} (no value)", [name], False, False),
            Generated(f"global {name} after command", [*command, name, "v"], False, False),
        ]
    cases.append(Generated("global --version", ["--version", *command], False, False))
    return cases


GENERATED = [case for command in fast.COMMANDS for case in generated_for(command)]
GENERATED += generated_globals()


def test_every_hot_command_has_generated_cases() -> None:
    covered = {case.argv[1] for case in GENERATED if case.argv[0] == "item"}
    assert covered == set(fast.COMMANDS) == {"create", "update", "delete", "get", "list"}
    assert len({case.name for case in GENERATED}) == len(GENERATED)


GENERATED_RUNS = {
    f"gen {case.name}": Case(
        case.argv, case.fast, existing=() if case.argv[1:2] == ["create"] else ("Item1",)
    )
    for case in GENERATED
    if case.run
}


@pytest.mark.parametrize(
    "case",
    [*CASES.values(), *GENERATED_RUNS.values()],
    ids=[*CASES.keys(), *GENERATED_RUNS.keys()],
)
def test_the_fast_path_and_typer_give_identical_results(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fast_run = run_in_fresh_store(case, tmp_path / "a", monkeypatch, capsys, force_typer=False)
    typer_run = run_in_fresh_store(case, tmp_path / "b", monkeypatch, capsys, force_typer=True)
    assert fast_run.fast_ran is case.fast
    assert not typer_run.fast_ran
    assert fast_run[:3] == typer_run[:3]


def test_the_parity_table_covers_success_and_every_error_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = {
        run_in_fresh_store(case, tmp_path / name, monkeypatch, capsys, force_typer=False).code
        for name, case in CASES.items()
    }
    assert codes == {0, 2, 3, 4}


Call = tuple[str, tuple[object, ...], dict[str, tuple[type, object]]]
"""A run_* function called, with its positional arguments and (type, value) by keyword."""


class Parsed(NamedTuple):
    code: int | None
    calls: list[Call]
    state: dict[str, object]


def parse_with(parser: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Parsed:
    """What `parser` (fast or typer) hands the command's behaviour for argv: the run_*
    calls, with each value's type, and the global state; the commands do nothing."""
    from cqrs_cli.cli.app import run_typer

    calls: list[Call] = []

    def recorder(function: str) -> Any:
        def record(*args: object, **kwargs: object) -> int:
            typed = {key: (type(value), value) for key, value in kwargs.items()}
            calls.append((function, args, typed))
            return 0

        return record

    for module in (write_commands, item_commands):
        monkeypatch.setattr(module, "run_write", recorder("run_write"))
    for module in (read_commands, item_commands):
        monkeypatch.setattr(module, "run_get", recorder("run_get"))
        monkeypatch.setattr(module, "run_list", recorder("run_list"))
    state.reset()
    code = fast.dispatch(argv) if parser == "fast" else run_typer(argv)
    return Parsed(code, calls, {name: getattr(state, name) for name in CliState.__slots__})


@pytest.mark.parametrize("case", GENERATED, ids=[case.name for case in GENERATED])
def test_the_fast_path_parses_exactly_as_typer_does(
    case: Generated,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_cli_state: None,
) -> None:
    """For every generated command line, the fast path either hands it to typer or calls
    the command with the very values (and types) typer would; nothing is run here."""
    monkeypatch.delenv("CQRS_HOME")  # typer's global options read it into the state
    argv = [arg.replace("{store}", str(tmp_path)) for arg in case.argv]
    by_fast = parse_with("fast", argv, monkeypatch)
    by_typer = parse_with("typer", argv, monkeypatch)
    capsys.readouterr()
    assert (by_fast.code is not None) is case.fast, by_fast
    if case.fast:
        assert by_typer.code == 0 and len(by_typer.calls) == 1, by_typer
        assert by_fast == by_typer
    else:
        assert by_fast.calls == []


def test_typer_and_the_fast_path_declare_the_same_options() -> None:
    """Walks typer's command tree: every hot command's arguments, option names, flags,
    value types, ranges and defaults are the fast path's, but for the options declared
    typer-only; and so are the global options."""
    from typer._click.types import FloatRange, IntRange, StringParamType
    from typer.core import TyperOption
    from typer.main import get_command

    from cqrs_cli.cli.app import app

    root = get_command(app)
    items = root.commands["item"]  # type: ignore[attr-defined]
    for name, spec in fast.COMMANDS.items():
        command = items.commands[name]
        typer_only = {n for p in ITEM_COMMANDS[name] if not p.fast for n in p.names}
        arguments = [p.name for p in command.params if p.param_type_name == "argument"]
        assert tuple(arguments) == spec.positional, name
        values: dict[str, str] = {}
        flags: dict[str, str] = {}
        ranges: dict[str, tuple[type, object, object]] = {}
        defaults: dict[str, object] = {}
        for param in command.params:
            if param.param_type_name != "option":
                continue
            names = {*param.opts, *param.secondary_opts}
            defaults[param.name] = param.default
            if names & typer_only:
                assert names <= typer_only, (name, names)
                continue
            (flags if param.is_flag else values).update(dict.fromkeys(names, param.name))
            kind = param.type
            if isinstance(kind, IntRange | FloatRange):
                assert not (kind.min_open or kind.max_open or kind.clamp), (name, param.name)
                number = int if isinstance(kind, IntRange) else float
                ranges[param.name] = (number, kind.min, kind.max)
            elif not param.is_flag:
                assert isinstance(kind, StringParamType), (name, param.name, kind)
        assert values == spec.values, name
        assert flags == spec.flags, name
        assert defaults == spec.defaults, name
        converted = {key: (c.type, c.min, c.max) for key, c in spec.convert.items()}
        assert converted == ranges, name

    # The global options: typer's own (--version, completion) act instead of a
    # command and are left to typer.
    fresh = CliState()
    values, flags = {}, {}
    for param in root.params:
        assert isinstance(param, TyperOption) and param.name is not None
        names = {*param.opts, *param.secondary_opts}
        if param.is_eager or not param.expose_value:
            assert not names & {*fast.GLOBAL_VALUES, *fast.GLOBAL_FLAGS}, names
            continue
        (flags if param.is_flag else values).update(dict.fromkeys(names, param.name))
        if not param.is_flag:
            assert isinstance(param.type, StringParamType), param.name
        assert param.default == getattr(fresh, param.name), param.name
    assert values == fast.GLOBAL_VALUES
    assert flags == fast.GLOBAL_FLAGS


HEAVY = ("typer", "rich", "click", "pydantic", "dataclasses", "typing", "uuid")

# Runs one command line the way the `cqrs` script does, then reports what was imported.
PROBE = """
import sys
from cqrs_cli.cli.main import run
code = run(sys.argv[1:])
sys.stdout.flush()
sys.stderr.write("MODULES " + " ".join(sorted(sys.modules)) + "\\n")
sys.exit(code)
"""


def imported_by(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    last = result.stderr.splitlines()[-1]
    assert last.startswith("MODULES "), result.stderr
    return result, set(last.split()[1:])


def test_the_hot_write_commands_import_nothing_heavy() -> None:
    for argv, stdout in [
        (["item", "create", "X", "-d", "a"], "Item created: X\n"),
        (["item", "update", "X", "b", "--json"], None),
        (["-q", "item", "delete", "X"], "Item deleted: X\n"),
    ]:
        result, modules = imported_by(*argv)
        assert result.returncode == 0, result.stderr
        if stdout is not None:
            assert result.stdout == stdout
        heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
        assert heavy == [], f"{argv} imported {heavy}"


def test_the_probe_does_see_typer_when_typer_runs() -> None:
    # Guards the test above against passing vacuously.
    result, modules = imported_by("item", "create", "X", "--no-such-option")
    assert result.returncode == 2
    assert "typer" in modules
