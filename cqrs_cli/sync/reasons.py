"""Why a projection must be rebuilt rather than caught up: built from another journal,
a view that is new, changed version or is no longer built, or a journal that was
replaced under it (the event at its checkpoint is gone or is another event)."""

from __future__ import annotations

from ..views.registry import views as registered_views

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..journal.base import Journal
    from ..projection.store import ProjectionStore


def rebuild_reasons(journal: Journal, projection: ProjectionStore) -> list[str]:
    """Why the projection must be rebuilt before it can be caught up (empty: it need not)."""
    reasons = []
    built_from = projection.meta("journal_id")
    if built_from is not None and built_from != journal.journal_id:
        reasons.append(
            f"the projection was built from another journal ({built_from}, "
            f"this one is {journal.journal_id})"
        )
    wanted = {view.name: view.version for view in registered_views()}
    stored = projection.views()
    for view in stored:
        version = wanted.get(view.view)
        if version is not None and version != view.version:
            reasons.append(f"view {view.view} changed from version {view.version} to {version}")
    for missing in sorted(set(wanted) - {view.view for view in stored}):
        reasons.append(f"view {missing} is new")
    for gone in sorted({view.view for view in stored} - set(wanted)):
        # Its checkpoint would hold every read's freshness back for good.
        reasons.append(f"view {gone} is no longer built")
    if not reasons:
        reason = _replaced_journal(journal, projection)
        if reason is not None:
            reasons.append(reason)
    return reasons


def _replaced_journal(journal: Journal, projection: ProjectionStore) -> str | None:
    """Why the journal is not the one the projection was synced from, though its id
    is (it was restored from a backup, say): the event at the checkpoint is gone,
    or is another event."""
    # One statement, one snapshot: another sync may commit a batch between two
    # reads, and a checkpoint paired with the next batch's hash looks replaced.
    checkpoint, expected = projection.checkpoint_and_hash()
    if checkpoint == 0:
        return None
    head = journal.head()
    if checkpoint > head:
        return (
            f"the projection is ahead of the journal (position {checkpoint} > {head}): "
            "the journal was replaced"
        )
    found = journal.read_all(after=checkpoint - 1, limit=1)
    if expected is not None and (
        not found or found[0].position != checkpoint or found[0].hash != expected
    ):
        return (
            f"the journal's event at position {checkpoint} is not the one the projection "
            "was synced to: the journal was replaced (restored from a backup?)"
        )
    return None
