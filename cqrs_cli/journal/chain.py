"""The hash chain: each event's hash covers its content and the previous event's hash,
so that editing, removing or reordering any stored event breaks every later link."""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from hashlib import _Hash, sha256

    EventHash = Callable[[str, str, str, int, str, int, str, str, str, str | None, str | None], str]
else:
    try:  # the builtin module: `hashlib` loads OpenSSL first, ~3 ms of every write's start-up
        from _sha256 import sha256
    except ImportError:  # pragma: no cover - interpreters built without it
        from hashlib import sha256

GENESIS = "0" * 64

# The C string encoder behind json.dumps(ensure_ascii=False): the content below is
# byte for byte json.dumps([...], ensure_ascii=False, separators=(",", ":")), built
# without the encoder's per-call set-up (a third of a batch's hashing time).
_string = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring


def _hasher(sha: Callable[[bytes], _Hash]) -> EventHash:
    def event_hash(
        prev_hash: str,
        event_id: str,
        stream_id: str,
        stream_version: int,
        event_type: str,
        schema_version: int,
        data: str,
        recorded_at: str,
        command_id: str,
        idempotency_key: str | None,
        correlation_id: str | None,
    ) -> str:
        """SHA-256 of the JSON array of the fields: an unambiguous encoding, so that no
        separator inside a field can make two different events hash the same."""
        key = "null" if idempotency_key is None else _string(idempotency_key)
        correlation = "null" if correlation_id is None else _string(correlation_id)
        content = (
            f"[{_string(prev_hash)},{_string(event_id)},{_string(stream_id)},"
            f"{int(stream_version)},{_string(event_type)},{int(schema_version)},"
            f"{_string(data)},{_string(recorded_at)},{_string(command_id)},{key},{correlation}]"
        )
        return sha(content.encode("utf-8", "surrogatepass")).hexdigest()

    return event_hash


event_hash = _hasher(sha256)
"""The hash of an event: (prev_hash, event_id, stream_id, stream_version, event_type,
schema_version, data, recorded_at, command_id, idempotency_key, correlation_id) -> hex."""


def bulk_event_hash() -> EventHash:
    """`event_hash` on OpenSSL's SHA-256: the same hashes in half the time per event,
    for the price of importing `hashlib` (about 3 ms). For work on many events."""
    import hashlib

    return _hasher(hashlib.sha256)


def digest(text: str) -> str:
    """SHA-256 of `text` as hex, with the builtin module (no hashlib at start-up)."""
    return sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class ChainWalk:
    """Checks the links of a journal's events, read in position order.

    An event's `prev_hash` is one of two links, both accepted everywhere so that a
    journal moved between backends (export, import) verifies on either:
    - the hash of the journal's previous event (GENESIS for the first): what a backend
      with one writer at a time writes (SQLite, memory);
    - the hash of its stream's previous version (GENESIS for version 1): what a backend
      with concurrent writers writes (PostgreSQL), where no writer can know the hash of
      another's uncommitted event, but the stream's version check already orders
      writers of one stream.
    Accepting either link loses nothing the first one detects: a removed event breaks
    the journal link of the event after it, which cannot be its stream link too (that
    would be a version gap, checked apart). What a stream link cannot show is the
    removal of a stream's last events (see the README).

    Stream heads are remembered for the latest `cap` streams; an older one is asked of
    `lookup(stream_id, version)` (the hash of that version, or None), so memory stays
    bounded whatever the number of streams."""

    def __init__(
        self, lookup: Callable[[str, int], str | None] | None = None, cap: int = 500_000
    ) -> None:
        self._last = GENESIS
        self._heads: dict[str, str] = {}
        self._lookup = lookup
        self._cap = cap

    def links(self, prev_hash: str, stream_id: str, stream_version: int) -> bool:
        """Whether an event with these fields links to what came before it."""
        if prev_hash == self._last:
            return True
        if stream_version == 1:
            return prev_hash == GENESIS
        head = self._heads.get(stream_id)
        if head is None and self._lookup is not None:
            head = self._lookup(stream_id, stream_version - 1)
        return prev_hash == head

    def follow(self, stream_id: str, hash: str) -> None:
        """Move past an event that linked, with this `hash`."""
        self._last = hash
        heads = self._heads
        heads.pop(stream_id, None)  # re-inserted last: the oldest streams go first
        heads[stream_id] = hash
        if len(heads) > self._cap:
            del heads[next(iter(heads))]
