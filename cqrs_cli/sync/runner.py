"""Catching the projection up with the journal.

Rules measured on this machine (docs/architecture.md, Storage rules), each seen to lose
or duplicate data when broken:
- the journal is opened read-only, read `position > checkpoint` in batches, and no
  read transaction is held between batches or while idle;
- each view is caught up from its own checkpoint; a view's rows and its checkpoint are
  written in one transaction, and the checkpoints are read *inside* it (BEGIN
  IMMEDIATE), so concurrent syncs never apply an event twice;
- a rebuild happens in place in one transaction: readers see the previous complete
  projection until it commits; no live database file is ever replaced or unlinked.
A process killed at any instant leaves the last committed batch; the next run resumes.
"""

from __future__ import annotations

import os
import sqlite3
import time

from ..errors import UnavailableError, UsageError
from ..projection.store import ProjectionStore
from ..record import Record, set_field
from ..sqlitefile import rollback_quietly, translate
from ..views.registry import views as registered_views
from . import bulk
from .apply import SQL_CATCH_UP_MIN, apply_next
from .build import Builder, create_views
from .reasons import rebuild_reasons

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..journal.base import Journal
    from ..paths import StorePaths

    Progress = Callable[[int, int], None]

STAGE_MIN = 5000
"""Events from which a first build or rebuild from a journal without a file of its own
copies it into a temporary file to build in SQL (staging.py) rather than replay it."""

DEFAULT_BATCH_SIZE = 2000
CRASH_HOOK_ENV = "CQRS_TEST_CRASH_AT"
"""Testing only: `POINT:N` SIGKILLs this process the Nth time sync reaches POINT
(before-commit, after-commit, mid-batch, rebuild-mid, rebuild-before-commit; and
just-committed, rebuild-just-committed: COMMIT has returned, nothing has recorded it
yet). `POINT:N:INT` or `:TERM` sends SIGINT or SIGTERM instead, as a Ctrl-C or a `kill`
arriving at that instant would. `cqrs apply` has points too (apply-commit: the input
is read and the last round and the commit are next; apply-line: --each is about to
apply a line)."""


class SyncReport(Record):
    """What one sync did. `applied` counts events; positions are journal positions."""

    __slots__ = ("applied", "start", "end", "rebuilt", "reasons")
    applied: int
    start: int
    end: int
    rebuilt: bool
    reasons: tuple[str, ...]

    def __init__(
        self,
        applied: int,
        start: int,
        end: int,
        rebuilt: bool = False,
        reasons: tuple[str, ...] = (),
    ) -> None:
        set_field(self, "applied", applied)
        set_field(self, "start", start)
        set_field(self, "end", end)
        set_field(self, "rebuilt", rebuilt)
        set_field(self, "reasons", reasons)

    def __str__(self) -> str:
        what = "Rebuilt from" if self.rebuilt else "Synced"
        noun = "event" if self.applied == 1 else "events"
        return f"{what} {self.applied} {noun} (position {self.start} -> {self.end})"

    def to_json(self) -> dict[str, object]:
        return {
            "applied": self.applied,
            "start": self.start,
            "end": self.end,
            "rebuilt": self.rebuilt,
            "reasons": list(self.reasons),
        }


class SyncInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped a sync. `report` says what it committed.

    `build`: None for a catch-up, whose batch in flight was rolled back and whose
    batches before it stand (`report`; a re-run resumes from `report.end`); "first" or
    "rebuild" for a build from scratch, which is one transaction. `complete`: the
    interrupt came after the last commit (COMMIT had returned): everything this sync
    set out to do is committed, and `report` is its whole summary."""

    def __init__(
        self, report: SyncReport, *, build: str | None = None, complete: bool = False
    ) -> None:
        super().__init__()
        self.report = report
        self.build = build
        self.complete = complete


class _CrashHook:
    """Deterministic crash (and interrupt) points for the crash-recovery tests."""

    def __init__(self) -> None:
        point, _, rest = os.environ.get(CRASH_HOOK_ENV, "").partition(":")
        count, _, signame = rest.partition(":")
        self.point = point
        self.remaining = int(count) if count.isdigit() else 1
        self.signame = signame or "KILL"

    def reached(self, point: str) -> None:
        if point == self.point:
            self.remaining -= 1
            if self.remaining == 0:
                import signal

                os.kill(os.getpid(), getattr(signal, f"SIG{self.signame}"))


def crash_hook() -> _CrashHook:
    """The test-only hook of CRASH_HOOK_ENV, for the commands that have points too."""
    return _CrashHook()


class Syncer:
    """Syncs one projection from one journal. Use as a context manager."""

    def __init__(
        self,
        paths: StorePaths,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Progress | None = None,
        notify: Callable[[str], None] | None = None,
        journal: Journal | None = None,
    ) -> None:
        if not 1 <= batch_size <= 1_000_000:
            raise UsageError(f"invalid batch size {batch_size}: give 1 to 1000000 events")
        self.paths = paths
        self.batch_size = batch_size
        self.progress = progress
        self.notify = notify
        """Told each reason for a rebuild, before the rebuild starts (it may be long)."""
        # A journal object given by the caller stays the caller's (never closed here);
        # otherwise the journal is found from `paths.journal`, read-only.
        self._given = journal
        self._journal: Journal | None = journal
        self._projection: ProjectionStore | None = None
        self._crash = _CrashHook()
        self._at = 0  # the checkpoint as last read or committed, for an interrupt's report

    def __enter__(self) -> Syncer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._journal is not None and self._journal is not self._given:
            self._journal.close()
        self._journal = self._given
        if self._projection is not None:
            self._projection.close()
            self._projection = None

    def _open(self) -> tuple[Journal, ProjectionStore] | None:
        """Journal (read-only) and projection; None while there is no journal yet."""
        if self._journal is None:
            from ..journal.locator import find_journal

            self._journal = find_journal(self.paths.journal)
            if self._journal is None:
                return None
        if self._projection is None:
            store = ProjectionStore.open(self.paths.projection, create=create_views, readonly=False)
            assert store is not None
            self._projection = store
        return self._journal, self._projection

    def run(self, *, rebuild: bool = False) -> SyncReport:
        """Catch every view up with the journal (or rebuild them all from scratch)."""
        opened = self._open()
        if opened is None:
            return SyncReport(0, 0, 0)
        journal, projection = opened
        try:
            self._at = projection.checkpoint()
            reasons = rebuild_reasons(journal, projection)
            if self.notify is not None:
                for reason in reasons:
                    self.notify(reason)
            if rebuild or reasons:
                return self._rebuild(journal, projection, tuple(reasons))
            if projection.checkpoint() == 0:
                # A first sync is a build from scratch: the bulk path is several times
                # faster, and all-or-nothing costs nothing when there is nothing yet.
                return self._rebuild(journal, projection, (), first=True)
            return self._catch_up(journal, projection)
        except sqlite3.Error as exc:
            raise translate(exc, projection.path) from None
        except SyncInterrupted:
            raise
        except KeyboardInterrupt:
            # Before any transaction (reading the reasons, waiting for the lock).
            raise SyncInterrupted(
                SyncReport(0, self._at, self._at), build="rebuild" if rebuild else None
            ) from None

    def _catch_up(self, journal: Journal, projection: ProjectionStore) -> SyncReport:
        conn = projection.conn
        views = registered_views()
        names = [view.name for view in views]
        start = end = self._at = projection.checkpoint()
        total = max(journal.head() - start, 0)
        applied = 0
        batch = None
        committing = False
        # A large catch-up from a journal file goes in SQL, batch by batch (apply.py).
        local = journal.local_file() if total >= SQL_CATCH_UP_MIN else None
        in_sql = bulk.attached(conn)  # by a first sync that found it had a projection
        attach = local is not None and not in_sql
        try:
            if attach:
                assert local is not None
                try:
                    bulk.attach(conn, local.sqlite_uri())
                    in_sql = True
                except sqlite3.Error:
                    attach = False  # the Python path reads the journal its own way
            if self.progress is not None:
                self.progress(0, total)
            while True:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # Read inside the transaction: another sync may have moved them.
                    checkpoints = projection.checkpoints(names)
                    low = min(checkpoints.values())
                    if applied == 0:
                        start = end = low
                    batch = apply_next(
                        conn,
                        journal,
                        views,
                        checkpoints,
                        self.batch_size,
                        in_sql=in_sql,
                        reached=self._crash.reached,
                    )
                    if batch is None:
                        conn.execute("ROLLBACK")
                        if self.progress is not None:
                            self.progress(max(total, applied), max(total, applied))
                        return SyncReport(applied, start, max(end, low))
                    projection.advance(batch.views, batch.position, batch.hash, journal.journal_id)
                    self._crash.reached("before-commit")
                    committing = True
                    conn.execute("COMMIT")
                    self._crash.reached("just-committed")
                except KeyboardInterrupt:
                    raise
                except BaseException:
                    rollback_quietly(conn)
                    raise
                # The batch is committed; these three lines record it.
                applied, end, committing = applied + batch.size, batch.position, False
                self._at = end
                self._crash.reached("after-commit")
                if self.progress is not None:
                    self.progress(applied, max(total, applied))
        except KeyboardInterrupt:
            # COMMIT had returned if the transaction is over: then that batch stands
            # (whether or not the line after it recorded it yet).
            if committing and not conn.in_transaction and batch and end != batch.position:
                applied, end = applied + batch.size, batch.position
            rollback_quietly(conn)
            raise SyncInterrupted(SyncReport(applied, start, end)) from None
        finally:
            if attach:
                bulk.detach(conn)

    def _rebuild(
        self,
        journal: Journal,
        projection: ProjectionStore,
        reasons: tuple[str, ...],
        *,
        first: bool = False,
    ) -> SyncReport:
        """Build every view from the start of the journal, in place, in one transaction
        (readers see the previous projection until it commits): in SQL where a view can
        and the journal's file allows it, else by replaying events (build.py)."""
        conn = projection.conn
        build = "first" if first else "rebuild"
        head = applied = 0
        committing = committed = interrupted = False
        # The bulk SQL needs the journal's own file, attached to the projection's
        # connection; a large journal without one (a server's) is copied into a
        # temporary file first (staging.py), a small one replayed through every view.
        local = journal.local_file()
        staged = None
        try:
            uri = local.sqlite_uri() if local is not None else None
            if uri is None and journal.head() >= STAGE_MIN:
                from .staging import stage

                folder = os.path.dirname(os.path.abspath(projection.path))
                staged = stage(journal, folder)
                uri = staged.sqlite_uri()
            if uri is not None:
                bulk.attach(conn, uri)
            conn.execute("BEGIN IMMEDIATE")
            if first and projection.checkpoint() != 0:
                # Another sync got here first: catch up from where it left off.
                conn.execute("ROLLBACK")
                return self._catch_up(journal, projection)
            views = registered_views()
            for view in reversed(views):
                view.drop(conn)
            projection.reset_views([(view.name, view.version) for view in views])
            # Up to the head as the attached file shows it, in this transaction.
            head = bulk.head(conn) if uri is not None else journal.head()
            builder = Builder(
                conn,
                journal,
                head,
                attached=uri is not None,
                batch_size=self.batch_size,
                reached=self._crash.reached,
                progress=self.progress,
            )
            applied, last_hash = builder.build(views)
            projection.advance([view.name for view in views], head, last_hash, journal.journal_id)
            self._crash.reached("rebuild-before-commit")
            committing = True
            conn.execute("COMMIT")
            self._crash.reached("rebuild-just-committed")
            committed = True
            if self.progress is not None:
                self.progress(head, head)
        except SyncInterrupted:
            raise  # from the catch-up above
        except KeyboardInterrupt:
            # COMMIT had returned if the transaction is over: the build stands.
            committed = committed or (committing and not conn.in_transaction)
            if not committed:
                rollback_quietly(conn)
                raise SyncInterrupted(SyncReport(0, self._at, self._at), build=build) from None
            interrupted = True
        except BaseException:
            rollback_quietly(conn)
            raise
        finally:
            if uri is not None:
                bulk.detach(conn)
            if staged is not None:
                staged.remove()
        report = SyncReport(applied, 0, head, rebuilt=not first, reasons=reasons)
        if interrupted:
            raise SyncInterrupted(report, build=build, complete=True)
        return report

    def follow(
        self,
        on_report: Callable[[SyncReport], None],
        *,
        poll_interval: float = 0.2,
        should_stop: Callable[[], bool] = lambda: False,
        on_outage: Callable[[str], None] | None = None,
    ) -> None:
        """Sync now, then again as soon as the journal grows, until `should_stop()` or
        KeyboardInterrupt. Idle, it waits in `Journal.wait_for_change`, which notices a
        commit within milliseconds (SQLite: a `PRAGMA data_version` every 5 ms) and
        holds no read transaction. At least every `poll_interval` seconds it reads the
        head itself and asks `should_stop`, and that often it looks for a journal that
        does not exist yet.

        A journal that cannot be reached (UnavailableError: its server is down or the
        connection was lost) is closed and found again from `paths.journal`, after a
        backoff (Outage); `on_outage` is told once when it is lost and once when it is
        back. Nothing is lost meanwhile: the projection keeps its last committed batch,
        and the sync after the reconnection resumes from it. A journal object given by
        the caller is not ours to reopen: its UnavailableError goes up."""
        outage = Outage(on_outage, poll_interval)
        first = True  # the first report is always given, even of nothing
        seen: int | None = None  # None: sync at once (at the start, after a reconnection)
        while not should_stop():
            try:
                if seen is None:
                    if self._open() is None:
                        outage.over()
                        time.sleep(poll_interval)
                        continue
                    report = self.run()
                    outage.over()
                    if first or report.applied or report.rebuilt:
                        on_report(report)
                    first = False
                    seen = report.end
                    continue
                journal = self._journal
                assert journal is not None
                if not journal.wait_for_change(seen, poll_interval):
                    continue
                report = self.run()
                seen = report.end
                if report.applied or report.rebuilt:
                    on_report(report)
            except UnavailableError as lost:
                if self._given is not None:
                    raise
                if self._journal is not None:
                    self._journal.close()
                    self._journal = None
                seen = None
                outage.wait(lost, should_stop)


class Outage:
    """The backoff of a follower whose journal cannot be reached: 0.1 s after the first
    failure, doubling up to `MOST` seconds (or the poll interval, if longer), waited in
    slices of the poll interval so that `should_stop` is still asked that often. Says
    once that the journal is unreachable, and once that it is back."""

    FIRST = 0.1
    MOST = 5.0

    def __init__(self, say: Callable[[str], None] | None, poll_interval: float) -> None:
        self.say = say
        self.poll = poll_interval
        self.most = max(self.MOST, poll_interval)
        self.delay = 0.0  # 0: the journal is reachable
        self.since = 0.0

    def wait(self, lost: Exception, should_stop: Callable[[], bool]) -> None:
        if not self.delay:
            self.since = time.monotonic()
            if self.say is not None:
                self.say(f"journal unreachable ({lost}); retrying")
        self.delay = min(self.delay * 2, self.most) if self.delay else self.FIRST
        deadline = time.monotonic() + self.delay
        while not should_stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, self.poll))

    def over(self) -> None:
        if self.delay:
            self.delay = 0.0
            if self.say is not None:
                down = time.monotonic() - self.since
                self.say(f"journal reachable again after {down:.1f} s; following")


def sync_projection(
    paths: StorePaths,
    *,
    rebuild: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    journal: Journal | None = None,
) -> SyncReport:
    """Sync once from Python: `sync_projection(StorePaths.resolve(home="/tmp/store"))`.
    `journal`: a journal object to sync from instead of the one `paths` names."""
    with Syncer(paths, batch_size=batch_size, journal=journal) as syncer:
        return syncer.run(rebuild=rebuild)
