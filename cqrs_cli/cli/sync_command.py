"""`cqrs sync`: catch the projection up, rebuild it, or follow the journal."""

from __future__ import annotations

import sys

from . import output
from .state import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from ..sync.runner import SyncInterrupted, SyncReport


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) stopped a long command. The message says, in one line, what
    it committed and where a re-run resumes; main() prints it and exits 130. Not a
    KeyboardInterrupt, which typer would turn into a silent exit 130."""


class Interrupts:
    """SIGINT and SIGTERM while a command that commits runs: KeyboardInterrupt at once,
    or, while `holding` (a commit and the lines that record it), remembered in `pending`
    for the command to look at once it knows what is committed. A signal that was
    ignored when the command started (a background job's SIGINT) stays ignored, and
    nothing is installed outside the main thread."""

    def __init__(self) -> None:
        self.holding = False
        self.pending = False
        self.finished = False
        self._saved: dict[int, object] = {}

    def finish(self) -> None:
        """The command's work is committed: from now on a signal is ignored, so that
        it cannot turn the exit 0 of a finished command into 130 while it reports and
        closes its files."""
        self.finished = True

    def __enter__(self) -> Interrupts:
        import signal

        defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
        for signum, default in defaults.items():
            try:
                if signal.getsignal(signum) is default:
                    self._saved[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread
                break
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        # Always what was there before: the CLI also runs inside other programs (the
        # tests' runner), where an ignored signal would outlive the command and be
        # inherited by every process they start.
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._saved.clear()

    def _handle(self, signum: int, frame: object) -> None:
        if self.finished:
            return
        if self.holding:
            self.pending = True
            return
        raise KeyboardInterrupt


def progress_bar(
    description: str = "Syncing", *, wanted: bool = True, in_bytes: bool = False
) -> AbstractContextManager[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal, -q was not given and the
    command wants one; otherwise nothing at all. The callback takes (done, total):
    total 0 is unknown (a stream), and the bar then just counts. `in_bytes`: done and
    total are bytes (of a file being read), shown as sizes."""
    from contextlib import contextmanager

    enabled = wanted and sys.stderr.isatty() and not state.quiet

    @contextmanager
    def bar() -> Iterator[Callable[[int, int], None] | None]:
        if not enabled:
            yield None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TimeRemainingColumn,
        )

        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn() if in_bytes else MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            # Lines printed meanwhile go above the bar, but stdout only when it is a
            # terminal too: redirected, it must get its data (`cqrs sync > out.txt`).
            redirect_stdout=sys.stdout.isatty(),
        )
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)
            if not progress.live.is_started:
                # Drawn from the first report on, with its total (no `0/?` first).
                progress.start()

        try:
            yield update
        finally:
            if progress.live.is_started:
                progress.stop()

    return bar()


def stop_on_sigterm() -> None:
    """Let `kill PID` stop a follower the way Ctrl-C does: between or inside a batch,
    whose transaction then rolls back, leaving a consistent checkpoint."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def stopped_sync(stopped: SyncInterrupted, command: str = "the same command") -> str:
    """What an interrupted sync committed and how to go on, in one line."""
    if stopped.build == "first":
        return (
            "the first sync is one transaction and was rolled back: nothing was "
            f"committed, the projection is as it was; re-run {command}"
        )
    if stopped.build == "rebuild":
        return (
            "the rebuild is one transaction and was rolled back: nothing was committed, "
            f"the projection is as it was; re-run {command}"
        )
    report = stopped.report
    return f"{report}; a re-run resumes from {report.end}"


def outage_line(message: str) -> None:
    """A follower's journal lost or back (sync/runner.py, Outage), on stderr even with
    -q: a follower that stops applying must say why, in its service's log."""
    from ..text import printable

    sys.stderr.write(f"cqrs: {printable(message)}\n")
    sys.stderr.flush()


def check_poll(poll: float) -> None:
    """--poll of the commands that follow the journal (sync, events)."""
    from ..errors import UsageError

    if not 0 < poll <= 3600:
        raise UsageError(f"invalid --poll {poll}: give seconds, more than 0")


def run_sync(*, rebuild: bool, follow: bool, batch_size: int, poll: float, as_json: bool) -> int:
    from ..errors import UsageError
    from ..sync.runner import Syncer, SyncInterrupted

    if batch_size < 1:
        raise UsageError(f"invalid --batch-size {batch_size}: it must be 1 or more")
    check_poll(poll)

    def report(result: SyncReport) -> None:
        if as_json:
            output.json_line(result.to_json())
        else:
            output.data(str(result))
        sys.stdout.flush()

    def rebuilding(reason: str) -> None:
        output.note(f"Rebuilding the projection: {reason}")

    paths = state.paths()
    with (
        Interrupts() as interrupts,
        progress_bar(wanted=not (as_json or follow)) as progress,
        Syncer(paths, batch_size=batch_size, progress=progress, notify=rebuilding) as syncer,
    ):
        if not follow and not _has_journal(paths.journal):
            from ..journal.redaction import redacted

            output.note(f"No journal at {redacted(paths.journal)} yet: nothing to sync.")
        try:
            if not follow:
                result = syncer.run(rebuild=rebuild)
                interrupts.finish()
                report(result)
                return 0
            if rebuild:
                report(syncer.run(rebuild=True))
            output.note("Following the journal; Ctrl-C to stop.")
            stop_on_sigterm()
            syncer.follow(report, poll_interval=poll, on_outage=outage_line)
        except SyncInterrupted as stopped:
            if stopped.complete:
                # Interrupted after its last commit: the sync is done.
                report(stopped.report)
                if not follow:
                    return 0
            elif stopped.build is None and stopped.report.applied:
                # The batch in flight was rolled back; these before it were committed.
                report(stopped.report)
            if not follow:
                raise Interrupted(stopped_sync(stopped)) from None
            output.note("Stopped.")
        except KeyboardInterrupt:
            if not follow:
                raise Interrupted(
                    "nothing was synced, the projection is as it was; re-run the same command"
                ) from None
            output.note("Stopped.")
    return 0


def _has_journal(locator: str) -> bool:
    from ..journal.locator import find_journal

    journal = find_journal(locator)
    if journal is None:
        return False
    journal.close()
    return True
