"""An item's state for a decision, at a cost that does not grow with its history.

The state comes from the item's state record (journal/base.py, "State records") and the
few events after it; when the record is missing, damaged, or names an event the stream
does not hold (a journal restored from a backup), from folding the whole stream, so a
record can speed a decision up but never change it. The write side saves a new record
once SNAPSHOT_EVERY events have passed since the last one, in the batch that appends
them.
"""

from __future__ import annotations

from ..domain.codec import decode, decode_state, encode_state
from ..domain.item import INITIAL, ItemState, evolve
from ..journal.chain import GENESIS
from ..journal.records import StateRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..journal.base import Journal, JournalBatch
    from ..journal.records import RecordedEvent

SNAPSHOT_EVERY = 50
"""Events after which a stream's state record is renewed: a decision folds at most this
many events, and one write in this many also saves a record (one small upsert)."""


class Loaded:
    """An item's state, the position of its last event (None: it has none), the
    version of the state record it was loaded from (0: none), and the hash of its last
    event (GENESIS: none), which its next event links to."""

    __slots__ = ("head", "position", "saved", "state")

    def __init__(
        self, state: ItemState, position: int | None, saved: int, head: str = GENESIS
    ) -> None:
        self.state = state
        self.position = position
        self.saved = saved
        self.head = head


NEW = Loaded(INITIAL, None, 0)
"""An item with no events."""


def fold_from(record: StateRecord | None, events: list[RecordedEvent]) -> Loaded | None:
    """The item from `record` and its stream's `events` from the record's version on (or
    from all of them, without a record); None if the record does not match them."""
    saved = 0
    state = INITIAL
    tail = events
    if record is not None:
        first = events[0] if events else None
        if first is None or first.stream_version != record.version or first.hash != record.hash:
            return None
        found = decode_state(record.data, record.version)
        if found is None:
            return None
        state, tail, saved = found, events[1:], record.version
    for e in tail:
        state = evolve(state, decode(e.stream_id, e.event_type, e.schema_version, e.data))
    if not events:
        return Loaded(state, None, saved)
    return Loaded(state, events[-1].position, saved, events[-1].hash)


def load(journal: Journal, item_id: str) -> Loaded:
    """The item as the journal holds it now (reads outside any transaction). One read
    for an item without a state record (most items: a new one, a short history); its
    record is read only when the events start past version 1 (read_tail starts at
    version 1 when the record names no event of the stream)."""
    events = journal.read_tail(item_id)
    if not events or events[0].stream_version == 1:
        return fold_from(None, events) or NEW
    record = journal.read_state(item_id)  # renewed meanwhile? fold_from then says no
    loaded = fold_from(record, events) if record is not None else None
    return loaded or fold_from(None, journal.read_stream(item_id)) or NEW


def load_round(batch: JournalBatch, item_ids: Sequence[str]) -> dict[str, Loaded]:
    """The items of a batch's round that have events, read through the batch (its own
    appends and records included); an item missing from the result has none (NEW).
    The streams' versions are read in this round."""
    records = batch.read_states(item_ids)
    events = batch.read_streams(item_ids, {s: r.version for s, r in records.items()})
    loaded: dict[str, Loaded] = {}
    stale: list[str] = []
    # Only the items with events or a record: in a round of creates there are none, and
    # nothing is built for the new items.
    for item_id in events.keys() | records.keys():
        found = fold_from(records.get(item_id), events.get(item_id, []))
        if found is None:
            stale.append(item_id)
        else:
            loaded[item_id] = found
    if stale:
        # Records that do not match their streams: read those streams whole. A read
        # starts a new round, so the others are read again too, from their records.
        kept = {s: r.version for s, r in records.items() if s not in stale}
        events = batch.read_streams(item_ids, kept)
        for item_id in stale:
            if item_id in events:
                loaded[item_id] = fold_from(None, events[item_id]) or NEW
    return loaded


def record_to_save(
    item_id: str, saved: int, state: ItemState, last: RecordedEvent
) -> StateRecord | None:
    """A new state record for an item now in `state` after its event `last`, if enough
    events have passed since its record of version `saved`; else None."""
    if state.version - saved < SNAPSHOT_EVERY:
        return None
    return StateRecord(item_id, state.version, last.hash, encode_state(state))
