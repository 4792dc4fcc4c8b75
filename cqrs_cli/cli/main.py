"""The `cqrs` entry point: run one command and turn its outcome into an exit code.

Typed errors from the core become one line on stderr and their documented exit code
here, in one place; an interrupted long command (Interrupted) one line saying what it
committed, exit 130; anything else is a bug, reported in one line (with the traceback
under --debug or CQRS_DEBUG=1).
"""

from __future__ import annotations

import os
import sys

from ..errors import CqrsError, ExitCode
from ..text import printable
from .output import GuardedStdout, StdoutClosed, silence_stdout
from .state import state
from .sync_command import Interrupted


def run(argv: list[str]) -> int:
    """Run one command line; return its exit code. Never raises."""
    real_stdout = sys.stdout
    sys.stdout = GuardedStdout(real_stdout)
    try:
        return _run(argv)
    finally:
        sys.stdout = real_stdout


def _run(argv: list[str]) -> int:
    from ..notices import set_handler
    from . import output

    state.reset()
    instruction = os.environ.get("_CQRS_COMPLETE")
    if instruction:
        # A shell asking for completions (completion.py): no command runs, whatever argv.
        from .completion import respond

        return respond(instruction)
    set_handler(output.note)  # what the core has to say while it works: stderr, unless -q
    try:
        try:
            from .fast import dispatch

            code = dispatch(argv)
            if code is None:
                from .app import run_typer

                code = run_typer(argv)
            sys.stdout.flush()
            return code
        except CqrsError as exc:
            sys.stdout.flush()
            output.error_line(str(exc))
            return int(exc.exit_code)
        except Interrupted as stopped:
            # A long command says what it committed and where a re-run resumes.
            sys.stdout.flush()
            sys.stderr.write(f"cqrs: interrupted: {printable(str(stopped))}\n")
            return 130
        except KeyboardInterrupt:
            sys.stderr.write("cqrs: interrupted\n")
            return 130
    except (StdoutClosed, BrokenPipeError):
        # The reader went away (`cqrs item list | head -1`): not an error of ours.
        silence_stdout()
        return 0
    except OSError as exc:
        # Storage errors arrive as CqrsError; a bare OSError here is stdout failing
        # (a full disk, /dev/full, a closed descriptor).
        silence_stdout()
        sys.stderr.write(f"cqrs: error: cannot write output: {exc.strerror or exc}\n")
        return int(ExitCode.UNEXPECTED)
    except Exception as exc:
        if state.debug:
            raise
        sys.stderr.write(
            f"cqrs: unexpected error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback)\n"
        )
        return int(ExitCode.UNEXPECTED)


def main(argv: list[str] | None = None) -> None:
    from ..sync import trigger

    trigger.defer_to_exit = True  # this process ends when the command returns
    sys.exit(run(sys.argv[1:] if argv is None else argv))
