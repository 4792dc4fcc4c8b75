"""The stored shape of item events: the one place that encodes and decodes them.

An event is stored as (event type, schema version, JSON data); the item id is not in
the data, it is the journal stream the event belongs to. Changing what an event holds
means a new schema version here, plus an upcaster that turns the older shape into the
newer one as it is read, so that journals written by earlier versions stay readable.

    ItemCreated v1  {"description": str}
    ItemUpdated v1  {"description": str}
    ItemDeleted v1  {}
"""

from __future__ import annotations

import json

from ..errors import StorageError
from .item import Event, ItemCreated, ItemDeleted, ItemState, ItemUpdated

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

SCHEMA_VERSIONS: dict[str, int] = {"ItemCreated": 1, "ItemUpdated": 1, "ItemDeleted": 1}

# (event type, stored version) -> function from that version's data to the next one's.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


# The C string encoder behind json.dumps(ensure_ascii=False): encoding one field this
# way is several times cheaper than a json.dumps call, and gives the same text.
_string = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring


def encode(event: Event) -> tuple[str, int, str]:
    """(event type, schema version, JSON data) for `event`."""
    if isinstance(event, ItemDeleted):
        return "ItemDeleted", 1, "{}"
    name = "ItemCreated" if isinstance(event, ItemCreated) else "ItemUpdated"
    return name, 1, '{"description":' + _string(event.description) + "}"


def decode(stream_id: str, event_type: str, schema_version: int, data: str) -> Event:
    """The domain event stored as `data`, upcast to the current schema version."""
    current = SCHEMA_VERSIONS.get(event_type)
    if current is None:
        raise StorageError(f"unknown event type {event_type!r} in the journal")
    if schema_version > current:
        raise StorageError(
            f"event type {event_type} has schema version {schema_version}, newer than this "
            f"cqrs understands ({current}); upgrade cqrs"
        )
    try:
        fields = json.loads(data)
        while schema_version < current:
            fields = UPCASTERS[(event_type, schema_version)](fields)
            schema_version += 1
        if event_type == "ItemDeleted":
            return ItemDeleted(stream_id)
        description = fields["description"]
        if not isinstance(description, str):
            raise TypeError("description is not a string")
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(
            f"undecodable {event_type} event in stream {stream_id!r}: {exc}"
        ) from None
    if event_type == "ItemCreated":
        return ItemCreated(stream_id, description)
    return ItemUpdated(stream_id, description)


# The state of an item as a state record stores it (journal/records.py StateRecord): the
# version is the record's own. Versioned like events: a new shape needs a new "v".
_STATE_VERSION = 1


def encode_state(state: ItemState) -> str:
    """`state` as the JSON text of a state record."""
    live = "true" if state.live else "false"
    return f'{{"v":{_STATE_VERSION},"live":{live},"description":{_string(state.description)}}}'


def decode_state(data: str, version: int) -> ItemState | None:
    """The state a record's `data` holds, at `version`; None if it is not one this
    version of cqrs wrote (damaged, or another shape): the caller folds the events."""
    try:
        fields = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(fields, dict) or fields.get("v") != _STATE_VERSION:
        return None
    live, description = fields.get("live"), fields.get("description")
    if not isinstance(live, bool) or not isinstance(description, str) or version < 1:
        return None
    return ItemState(version, live, description)
