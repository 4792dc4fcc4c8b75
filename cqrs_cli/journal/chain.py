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
"""The `prev_hash` of a journal's first event."""


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
    # A JSON array is an unambiguous encoding of the fields: no separator inside a
    # field can make two different events hash the same.
    content = json.dumps(
        [
            prev_hash,
            event_id,
            stream_id,
            stream_version,
            event_type,
            schema_version,
            data,
            recorded_at,
            command_id,
            idempotency_key,
            correlation_id,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return sha256(content.encode("utf-8", "surrogatepass")).hexdigest()
