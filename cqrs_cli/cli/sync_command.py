"""`cqrs sync`: catch the projection up, rebuild it, or follow the journal."""

from __future__ import annotations

import sys

from . import output
from .state import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from ..sync.runner import SyncReport


def progress_bar(
    description: str = "Syncing", *, wanted: bool = True
) -> AbstractContextManager[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal, -q was not given and the
    command wants one; otherwise nothing at all."""
    from contextlib import contextmanager

    enabled = wanted and sys.stderr.isatty() and not state.quiet

    @contextmanager
    def bar() -> Iterator[Callable[[int, int], None] | None]:
        if not enabled:
            yield None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress:
            task = progress.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                # total 0: unknown (a stream); the bar then just counts.
                progress.update(task, completed=done, total=total or None)

            yield update

    return bar()


def stop_on_sigterm() -> None:
    """Let `kill PID` stop a follower the way Ctrl-C does: between or inside a batch,
    whose transaction then rolls back, leaving a consistent checkpoint."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


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
        progress_bar(wanted=not (as_json or follow)) as progress,
        Syncer(paths, batch_size=batch_size, progress=progress, notify=rebuilding) as syncer,
    ):
        if not follow and not _has_journal(paths.journal):
            output.note(f"No journal at {paths.journal} yet: nothing to sync.")
        try:
            if not follow:
                report(syncer.run(rebuild=rebuild))
                return 0
            if rebuild:
                report(syncer.run(rebuild=True))
            output.note("Following the journal; Ctrl-C to stop.")
            stop_on_sigterm()
            syncer.follow(report, poll_interval=poll)
        except SyncInterrupted as stopped:
            # The batch in flight was rolled back; these before it were committed.
            report(stopped.report)
            if not follow:
                raise
            output.note("Stopped.")
        except KeyboardInterrupt:
            if not follow:
                raise
            output.note("Stopped.")
    return 0


def _has_journal(locator: str) -> bool:
    from ..journal.locator import find_journal

    journal = find_journal(locator)
    if journal is None:
        return False
    journal.close()
    return True
