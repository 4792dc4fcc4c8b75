"""Streaming journal events as NDJSON, optionally following new appends."""

from __future__ import annotations

import json
import sys
import time
import unicodedata

from ..errors import UnavailableError
from ..text import json_safe
from .state import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..journal.base import Journal
    from ..journal.records import RecordedEvent
    from ..sync.runner import Outage

BATCH = 2000
_string = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


def envelope_line(event: RecordedEvent) -> str:
    """The event's envelope (RecordedEvent.envelope()) as one JSON line, written
    directly: the stored data is already JSON and goes in as it is, instead of being
    parsed and encoded again (three times faster on a million events)."""
    return json_safe(
        f'{{"position": {event.position}, "event_id": {_string(event.event_id)}, '
        f'"stream_id": {_string(event.stream_id)}, "stream_version": {event.stream_version}, '
        f'"event_type": {_string(event.event_type)}, '
        f'"schema_version": {event.schema_version}, "data": {event.data}, '
        f'"recorded_at": {_string(event.recorded_at)}, '
        f'"metadata": {{"command_id": {_string(event.command_id)}, '
        f'"idempotency_key": {_text(event.idempotency_key)}, '
        f'"correlation_id": {_text(event.correlation_id)}}}, '
        f'"prev_hash": {_string(event.prev_hash)}, "hash": {_string(event.hash)}}}\n'
    )


def stream_events(
    *,
    stream_id: str | None,
    after: int,
    limit: int | None,
    event_type: str | None,
    follow: bool,
    poll: float,
) -> int:
    """Print events after `after`, in batches read with no transaction held between
    them; with `follow`, go on waiting for new ones until interrupted."""
    from ..journal.locator import find_journal

    if stream_id is not None:
        from ..domain.validation import validate_text

        # Ids are stored in NFC; text that is not UTF-8 can name no stream.
        stream_id = unicodedata.normalize("NFC", validate_text("--stream id", stream_id))
    paths = state.paths()
    write = sys.stdout.write
    printed = 0
    journal: Journal | None = None
    outage: Outage | None = None  # following, a journal that could not be reached
    try:
        while True:
            try:
                if journal is None:
                    journal = find_journal(paths.journal)
                    if journal is None:
                        if not follow:
                            return 0  # no journal yet: no events
                        time.sleep(poll)
                        continue
                want = BATCH if limit is None else min(BATCH, limit - printed)
                if want <= 0:
                    return 0
                covered = journal.head() if follow else 0
                events = journal.read_all(
                    after=after, limit=want, stream_id=stream_id, event_type=event_type
                )
                if outage is not None:
                    outage.over()
                write("".join(map(envelope_line, events)))
                printed += len(events)
                if events:
                    after = events[-1].position
                    continue
                if not follow:
                    return 0
                # Every matching event up to `covered` is out: wait for the journal to
                # grow (noticed within milliseconds; see Journal.wait_for_change).
                sys.stdout.flush()
                after = max(after, covered)
                while not journal.wait_for_change(covered, poll):
                    pass
            except UnavailableError as lost:
                if not follow:
                    raise
                # As `cqrs sync --follow` does (sync/runner.py): found again after a
                # backoff, from the original locator, going on after the last printed.
                if journal is not None:
                    journal.close()
                    journal = None
                if outage is None:
                    from ..sync.runner import Outage
                    from .sync_command import outage_line

                    outage = Outage(outage_line, poll)
                sys.stdout.flush()
                outage.wait(lost, lambda: False)
    except KeyboardInterrupt:
        return 0
    finally:
        if journal is not None:
            journal.close()
