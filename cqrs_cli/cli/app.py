"""The typer application: every command, its help, and parsing of anything the fast
path (fast.py) leaves to it. Usage errors become one line and exit 2."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .. import __version__
from ..errors import ExitCode
from ..sync.runner import DEFAULT_BATCH_SIZE
from ..text import printable
from .complete_values import Choices
from .completion_scripts import SHELL_HELP
from .item_commands import item_app
from .item_params import GLOBAL_OPTIONS
from .journal_commands import events_command, journal_app
from .options import DEFAULT_POLL, Poll, Quiet, completed_as, quiet, with_params
from .state import state

app = typer.Typer(
    name="cqrs",
    help=(
        "CQRS and event sourcing from the shell.\n\n"
        "Write commands append events to an append-only journal (the source of truth); "
        "read commands query a projection built from it.\n\n"
        "Example: cqrs item create Item1 -d 'First item'"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Ours instead (completion_scripts.py): typer's printed the bash script for
    # `--show-completion zsh`, and its scripts completed file names where none go.
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(item_app, name="item")
app.add_typer(journal_app, name="journal")
app.command("events")(events_command)


@app.command("sync")
def sync_command(
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Rebuild every view from scratch; readers see the old state until it is done.",
        ),
    ] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep applying new events until interrupted."),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", metavar="N", min=1, max=1_000_000, help="Events per transaction."
        ),
    ] = DEFAULT_BATCH_SIZE,
    poll: Poll = DEFAULT_POLL,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each summary as one JSON object.")
    ] = False,
    quiet_: Quiet = False,
) -> int:
    """Catch the projection up with the journal: `Synced N events (position A -> B)`.

    Safe to run in several processes at once and to kill at any instant. A projection
    built from another journal, or by a cqrs with other view versions, is rebuilt,
    saying why.

    Example: cqrs sync --follow &
    """
    from .sync_command import run_sync

    quiet(quiet_)
    return run_sync(
        rebuild=rebuild, follow=follow, batch_size=batch_size, poll=poll, as_json=as_json
    )


@app.command("apply")
def apply_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="[FILE]",
            help="NDJSON commands, one per line; '-' (default) reads stdin.",
            click_type=completed_as("file"),
        ),
    ] = "-",
    each: Annotated[
        bool,
        typer.Option(
            "--each", help="Commit line by line and report each line's outcome; go on after errors."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON result per line on stdout (NDJSON).")
    ] = False,
    sync: Annotated[
        bool, typer.Option("--sync", help="Catch the projection up afterwards.")
    ] = False,
    quiet_: Quiet = False,
) -> int:
    """Apply many commands at once: all of them in one transaction, or none.

    Each line is {"op": "create"|"update"|"delete", "id": ..., "description": ...,
    "expect_version": N, "key": ..., "correlation_id": ...}. The first line that fails
    (invalid, or refused by the rules) is reported with its number, and nothing is
    written. Idempotency keys make a re-run of the same file safe.

    Example: jq -c '{op: "create", id: .sku, key: .sku}' items.json | cqrs apply --json
    """
    from .apply_command import run_apply

    quiet(quiet_)
    return run_apply(source, each=each, as_json=as_json, sync=sync)


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as one JSON object.")] = False,
    quiet_: Quiet = False,
) -> int:
    """Where things stand: journal head, each view's checkpoint and lag, last sync.

    Also says whether the projection was built from this journal.

    Example: cqrs status --json | jq '.views[] | .lag'
    """
    from .read_commands import run_status

    quiet(quiet_)
    return run_status(as_json=as_json)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"cqrs {__version__}")
        raise typer.Exit()


def _completion_script(ctx: typer.Context, param: Any, value: str | None) -> None:
    # Reached only with a SHELL given (typer cannot leave the value out): run_typer
    # answers every form before typer parses anything; this keeps the two the same.
    if value is None or ctx.resilient_parsing:
        return
    raise typer.Exit(_completion(param.opts[0], value))


def _completion(option: str, shell: str | None) -> int:
    from .completion_scripts import install, show

    if option == "--show-completion":
        typer.echo(show(shell), nl=False)
    else:
        typer.echo(install(shell), err=True)
    return 0


@app.callback()
@with_params(GLOBAL_OPTIONS)
def global_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    show_completion: Annotated[
        str | None,
        typer.Option(
            "--show-completion",
            metavar="[SHELL]",
            callback=_completion_script,
            is_eager=True,
            expose_value=False,
            click_type=Choices(SHELL_HELP),
            help="Print the completion script of SHELL (bash, zsh, fish, powershell), "
            "by default of the shell this runs in.",
        ),
    ] = None,
    install_completion: Annotated[
        str | None,
        typer.Option(
            "--install-completion",
            metavar="[SHELL]",
            callback=_completion_script,
            is_eager=True,
            expose_value=False,
            click_type=Choices(SHELL_HELP),
            help="Install the completion script of SHELL where that shell loads it.",
        ),
    ] = None,
    **options: Any,
) -> None:
    # What the command line (or the environment) gave changes the state; the rest keeps
    # the state's reset value (CQRS_DEBUG may have turned debug on already), as on the
    # fast path.
    for param in GLOBAL_OPTIONS:
        value = options[param.dest]
        if value != param.default:
            setattr(state, param.dest, value)


def _command_path(command: object, argv: list[str]) -> str:
    """`cqrs item create` for argv naming that command, so that usage errors say which
    command they are about (the error's own context is sometimes its parent's). Walks
    argv through the command groups, skipping the options each group knows."""
    path = ["cqrs"]
    i = 0
    while i < len(argv):
        commands = getattr(command, "commands", None)
        if not commands:
            break
        token = argv[i]
        if token in commands:
            command = commands[token]
            path.append(token)
            i += 1
            continue
        name, has_value, _ = token.partition("=")
        params = getattr(command, "params", [])
        param = next((p for p in params if name in p.opts or name in p.secondary_opts), None)
        if param is None:
            break
        i += 1 if has_value or getattr(param, "is_flag", False) else 2
    return " ".join(path)


def run_typer(argv: list[str]) -> int:
    """Run argv through typer, without its own exit handling, so that errors reach
    main() as exceptions and usage errors come out as one line."""
    # typer 0.28 vendors click as typer._click; the version range in pyproject.toml pins it.
    from typer._click.exceptions import (
        ClickException,
        NoArgsIsHelpError,
        NoSuchOption,
        UsageError,
    )
    from typer.exceptions import Abort

    from .completion_scripts import completion_option
    from .fast import GLOBAL_FLAGS, GLOBAL_VALUES

    asked = completion_option(argv)
    if asked is not None:
        action, shell = asked
        return _completion(f"--{action}-completion", shell)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="cqrs", standalone_mode=False)
    except NoArgsIsHelpError:
        # `cqrs` or `cqrs item` alone: typer has shown the help; exit 2 as for any
        # usage error.
        return int(ExitCode.USAGE)
    except UsageError as exc:
        where = _command_path(command, argv)
        message = printable(exc.format_message())
        name = exc.option_name if isinstance(exc, NoSuchOption) else None
        if name in GLOBAL_VALUES or name in GLOBAL_FLAGS:
            # Typed after the command, as people do: say where it goes instead of
            # suggesting a look-alike (`--journal` -> `--json`).
            sub = where.removeprefix("cqrs ")
            message = (
                f"{name} is an option of cqrs itself: give it before the command, "
                f"as in cqrs {name} ... {sub} ..."
            )
        typer.echo(f"{where}: error: {message} (see '{where} --help')", err=True)
        return int(ExitCode.USAGE)
    except ClickException as exc:
        typer.echo(f"cqrs: error: {printable(exc.format_message())}", err=True)
        return exc.exit_code
    except Abort:
        typer.echo("cqrs: aborted", err=True)
        return 130
    return result if isinstance(result, int) else 0
