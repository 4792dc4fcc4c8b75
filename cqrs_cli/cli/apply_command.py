"""`cqrs apply`: run a file of NDJSON commands, as one transaction or line by line."""

from __future__ import annotations

import gc
import sys

from ..errors import CqrsError, UsageError
from . import output
from .output import StdoutClosed, silence_stdout
from .state import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO

    from ..write.command_service import CommandService
    from ..write.ndjson import BatchCommand
    from ..write.results import WriteResult
    from .sync_command import Interrupts


def _result_json(line: int, result: WriteResult) -> dict[str, object]:
    return {
        "line": line,
        "ok": True,
        "item_id": result.item_id,
        "outcome": result.outcome,
        "version": result.version,
        "position": result.position,
        "already_applied": result.already_applied,
    }


def _error_json(line: int, message: str, exit_code: int) -> dict[str, object]:
    return {"line": line, "ok": False, "error": message, "exit_code": exit_code}


def open_input(source: str) -> IO[bytes]:
    """The bytes of FILE, or of stdin for '-' (refusing a terminal, which would hang)."""
    if source == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError(
                "cqrs apply reads NDJSON commands from stdin, but stdin is a terminal: "
                "give a FILE, or pipe the commands in (cqrs apply < commands.ndjson)"
            )
        return sys.stdin.buffer
    try:
        return open(source, "rb")
    except OSError as exc:
        raise UsageError(f"{source}: cannot read: {exc.strerror}") from None


MAX_LINE = 8 << 20
"""The longest input line read, in bytes. No valid line comes near it (a description
is at most 1 MiB, six times that when every character is escaped as \\uXXXX), and reading
stops there: a line of hundreds of megabytes is refused without being held whole."""


def read_lines(
    stream: IO[bytes], tick: Callable[[int, int], None] | None = None
) -> Iterator[bytes]:
    """The lines of `stream`, each read at most MAX_LINE + 1 bytes at a time (UsageError
    naming a longer one), `tick` told (lines, bytes) read so far every 1,000th line."""
    for number, line in enumerate(_bounded_lines(stream, tick), start=1):
        if line is None:
            raise UsageError(too_long(number))
        yield line


def too_long(number: int) -> str:
    return f"line {number}: longer than {MAX_LINE >> 20} MiB, which no valid line is"


def _bounded_lines(
    stream: IO[bytes], tick: Callable[[int, int], None] | None
) -> Iterator[bytes | None]:
    """The lines of `stream`, or None for a line longer than MAX_LINE, whose rest is
    read and dropped a chunk at a time: memory stays bounded whatever the input."""
    readline = stream.readline
    number = read = 0
    while line := readline(MAX_LINE + 1):
        number += 1
        read += len(line)
        if tick is not None and number % 1000 == 0:
            tick(number, read)
        if len(line) <= MAX_LINE:
            yield line
            continue
        while not line.endswith(b"\n"):
            line = readline(1 << 20)
            read += len(line)
            if not line:
                break
        yield None


def input_size(stream: IO[bytes]) -> int:
    """The bytes left to read when `stream` is a regular file (FILE, or stdin
    redirected from one), for a progress bar with a total; 0 for a pipe or a terminal."""
    import os
    import stat

    try:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            return 0
        return max(info.st_size - stream.tell(), 0)
    except (OSError, ValueError, AttributeError):
        return 0


def progress_ticks(
    progress: Callable[[int, int], None] | None, size: int
) -> Callable[[int, int], None] | None:
    """The `tick` for read_lines that moves `progress`: bytes read of `size`, or for a
    stream (size 0) lines read, with no total."""
    if progress is None:
        return None
    if size:
        return lambda lines, read: progress(min(read, size), size)
    return lambda lines, read: progress(lines, 0)


def run_apply(
    source: str = "-", *, each: bool = False, as_json: bool = False, sync: bool = False
) -> int:
    """Ctrl-C (or SIGTERM) stops the batch with one line saying what was committed
    (sync_command.Interrupted); one that comes once the batch is committed is too late
    to stop it, and the command ends as it would have."""
    stream = open_input(source)
    size = input_size(stream)
    try:
        return _apply(stream, size, each=each, as_json=as_json, sync=sync)
    finally:
        if not sync:
            # Whatever the outcome: with --each, or interrupted after some rounds, part of
            # the batch may be committed. A catch-up that finds nothing just ends.
            from ..sync.trigger import after_write

            after_write(state.paths())


def _apply(stream: IO[bytes], size: int, *, each: bool, as_json: bool, sync: bool) -> int:
    from ..write.command_service import CommandService
    from ..write.ndjson import parse_lines
    from .sync_command import Interrupted, Interrupts, progress_bar

    with Interrupts() as interrupts:
        with progress_bar("Applying", in_bytes=size > 0) as progress:
            tick = progress_ticks(progress, size)
            # The catch-up after the batch is this command's detached process (above).
            with CommandService(state.paths(), catch_up=False) as service:
                if each:
                    code, done = _apply_each(
                        service, _bounded_lines(stream, tick), as_json, interrupts
                    )
                else:
                    code, done = _apply_all(
                        service, parse_lines(read_lines(stream, tick)), as_json, interrupts
                    )
            if progress is not None and size:
                progress(size, size)
        # With --each, the lines that succeeded are committed even when others failed.
        if sync and (code == 0 or each):
            if interrupts.pending:
                raise Interrupted(
                    f"the batch was committed ({done}); the sync was not run: run cqrs sync"
                )
            interrupts.holding = False
            _sync_after(done)
    return code


def _sync_after(done: str) -> None:
    """apply --sync: the sync's bar and its summary line on stderr."""
    from ..sync.runner import Syncer, SyncInterrupted
    from .sync_command import Interrupted, progress_bar, stopped_sync

    try:
        with progress_bar() as progress, Syncer(state.paths(), progress=progress) as syncer:
            report = syncer.run()
    except SyncInterrupted as stopped:
        if not stopped.complete:
            raise Interrupted(
                f"the batch was committed ({done}); the sync stopped: "
                + stopped_sync(stopped, "cqrs sync")
            ) from None
        report = stopped.report
    output.note(str(report))


def _apply_all(
    service: CommandService,
    commands: Iterator[BatchCommand],
    as_json: bool,
    interrupts: Interrupts,
) -> tuple[int, str]:
    """All or nothing. Results are held in a spool file until the commit, so that
    nothing is printed for a batch that is then rolled back. (exit code, summary)"""
    import json
    import tempfile

    from ..sync.runner import crash_hook
    from ..text import json_safe
    from .sync_command import Interrupted

    hook = crash_hook()

    def then_hold() -> Iterator[BatchCommand]:
        yield from commands
        # Read to the end: the last round, its insert and the commit are not stopped,
        # so that an interrupt never leaves the batch committed but reported as not.
        interrupts.holding = True
        hook.reached("apply-commit")

    with tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8") as spool:
        # Built once: json.dumps with options builds an encoder on every call.
        encode = json.JSONEncoder(ensure_ascii=False).encode

        def on_result(line: int, result: WriteResult) -> None:
            spool.write(json_safe(encode(_result_json(line, result))))
            spool.write("\n")

        # A batch makes millions of short-lived objects and no reference cycles, which
        # reference counting frees as it goes: the cyclic collector's passes over them
        # were a tenth of the batch's time. This process is ours, so it is paused here
        # (the library call does not touch a host program's collector).
        gc.disable()
        try:
            # Without --json, no results: the batch then builds none (a tenth of its time).
            summary = service.apply(then_hold(), on_result=on_result if as_json else None)
        except CqrsError as exc:
            raise _nothing_written(exc) from None
        except KeyboardInterrupt:
            raise Interrupted(
                "the batch is one transaction and was rolled back: nothing was written; "
                "re-run the same command"
            ) from None
        finally:
            gc.enable()
        # Committed. From here on an interrupt only stops the printing of results.
        interrupts.holding = True
        spool.seek(0)
        try:
            for chunk in iter(lambda: spool.read(1 << 16), ""):
                if interrupts.pending:
                    output.note(f"{summary} (interrupted: not every result was printed)")
                    return 0, str(summary)
                sys.stdout.write(chunk)
        except StdoutClosed:
            # The batch is committed whatever became of its results: say what it did.
            silence_stdout()
            output.note(f"{summary} (stdout was closed: not every result was printed)")
            return 0, str(summary)
    output.note(str(summary))
    return 0, str(summary)


def _nothing_written(exc: CqrsError) -> CqrsError:
    """The same error, saying that the batch was rolled back."""
    message = str(exc)
    if "nothing was written" not in message:  # a busy journal already says so
        message += "; nothing was written"
    error = CqrsError(message)
    error.exit_code = exc.exit_code
    return error


def _apply_each(
    service: CommandService,
    lines: Iterator[bytes | None],
    as_json: bool,
    interrupts: Interrupts,
) -> tuple[int, str]:
    """Line by line, each command its own transaction; a failed line is reported and
    the others go on. Exit code: that of the first failure, 0 if none. An interrupt
    stops the batch between two lines (reading the next one, or once the line being
    applied is done), saying after which line. (exit code, summary)"""
    from ..sync.runner import crash_hook
    from ..write.batch import BatchSummary
    from ..write.ndjson import parse_line
    from .sync_command import Interrupted

    hook = crash_hook()

    summary = BatchSummary()
    failed = 0
    first_failure = 0
    closed_after = 0  # the line after which stdout was closed (0: it was not)

    def emit(number: int, value: dict[str, object]) -> None:
        # A reader that goes away (`| head -1`) does not cut the batch short: every
        # line is still applied, and the summary on stderr says how far output went.
        nonlocal closed_after
        if closed_after:
            return
        try:
            output.json_line(value)
        except StdoutClosed:
            silence_stdout()
            closed_after = number

    def apply_line(number: int, raw: bytes | None) -> None:
        nonlocal failed, first_failure
        try:
            if raw is None:
                raise UsageError(too_long(number))
            command = parse_line(raw, number)
            if command is None:
                return
            result = service.execute(
                command.command,
                expected_version=command.expected_version,
                idempotency_key=command.idempotency_key,
                correlation_id=command.correlation_id,
            )
        except CqrsError as exc:
            failed += 1
            first_failure = first_failure or int(exc.exit_code)
            message = str(exc) if str(exc).startswith("line ") else f"line {number}: {exc}"
            if as_json:
                emit(number, _error_json(number, message, int(exc.exit_code)))
            else:
                output.error_line(message)
            return
        summary.add(result)
        if as_json:
            emit(number, _result_json(number, result))

    def done() -> str:
        return f"{summary}" + (f"; {failed} failed" if failed else "")

    end = object()
    last = 0  # the last line applied (or refused)
    try:
        while True:
            # Reading may wait on a pipe: an interrupt stops it at once. Applying a
            # line is held, so that it is either done and counted or not started.
            interrupts.holding = False
            raw = next(lines, end)
            interrupts.holding = True
            if raw is end:
                break
            assert raw is None or isinstance(raw, bytes)
            hook.reached("apply-line")
            apply_line(last + 1, raw)
            last += 1
            if interrupts.pending:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupts.holding = True
        if not last:
            raise Interrupted("no line was applied; re-run the same command") from None
        raise Interrupted(
            f"after line {last}: {done()}; each line is its own transaction: re-run with "
            f"the lines after {last}, or the same file if it uses keys"
        ) from None
    closed = f" (stdout was closed at line {closed_after}: later results not printed)"
    output.note(done() + (closed if closed_after else ""))
    return first_failure, done()
