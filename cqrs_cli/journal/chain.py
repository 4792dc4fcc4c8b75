"""The hash chain: each event's hash covers its content and the previous event's hash,
so that editing, removing or reordering any stored event breaks every later link."""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from hashlib import sha256
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


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


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
    content = (
        f"[{_string(prev_hash)},{_string(event_id)},{_string(stream_id)},{int(stream_version)},"
        f"{_string(event_type)},{int(schema_version)},{_string(data)},{_string(recorded_at)},"
        f"{_string(command_id)},{_text(idempotency_key)},{_text(correlation_id)}]"
    )
    return sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
