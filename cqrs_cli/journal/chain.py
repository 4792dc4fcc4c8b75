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
