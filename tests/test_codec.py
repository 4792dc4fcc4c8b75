"""The stored shape of events: encode and decode round trip, and what the codec refuses."""

from __future__ import annotations

from typing import Any

import pytest

from cqrs_cli.domain import codec
from cqrs_cli.domain.codec import decode, encode
from cqrs_cli.domain.item import Event, ItemCreated, ItemDeleted, ItemUpdated
from cqrs_cli.errors import StorageError

ID = "Item1"


@pytest.mark.parametrize(
    "event",
    [
        ItemCreated(ID, ""),
        ItemCreated(ID, "First item"),
        ItemCreated(ID, 'multi\nline\ttext \x1b[31m "quoted" \\ é 日本 🎉 \u202e'),
        ItemUpdated(ID, "Updated Description"),
        ItemUpdated(ID, "x" * 100_000),
        ItemDeleted(ID),
    ],
    ids=repr,
)
def test_every_event_survives_an_encode_decode_round_trip(event: Event) -> None:
    event_type, schema_version, data = encode(event)
    assert event_type == type(event).__name__
    assert schema_version == 1
    assert decode(ID, event_type, schema_version, data) == event


@pytest.mark.parametrize(
    ("event", "stored"),
    [
        (ItemCreated(ID, "First item"), ("ItemCreated", 1, '{"description":"First item"}')),
        (ItemUpdated(ID, "é\n"), ("ItemUpdated", 1, '{"description":"é\\n"}')),
        (ItemDeleted(ID), ("ItemDeleted", 1, "{}")),
    ],
    ids=["created", "updated", "deleted"],
)
def test_the_stored_shape_is_the_documented_contract(
    event: Event, stored: tuple[str, int, str]
) -> None:
    # The item id is the stream, not part of the data.
    assert encode(event) == stored


def test_the_stream_id_becomes_the_item_id() -> None:
    assert decode("Other", *encode(ItemCreated(ID, "a"))) == ItemCreated("Other", "a")


def test_an_unknown_event_type_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="unknown event type 'ItemRenamed'") as caught:
        decode(ID, "ItemRenamed", 1, '{"name":"x"}')
    assert caught.value.exit_code == 7


@pytest.mark.parametrize("event_type", ["ItemCreated", "ItemUpdated", "ItemDeleted"])
def test_a_newer_schema_version_is_a_storage_error_asking_for_an_upgrade(event_type: str) -> None:
    with pytest.raises(StorageError, match="upgrade cqrs") as caught:
        decode(ID, event_type, 2, '{"description":"x"}')
    assert caught.value.exit_code == 7


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("ItemCreated", "not json"),
        ("ItemCreated", "{}"),
        ("ItemCreated", '{"description": 5}'),
        ("ItemCreated", '{"description": null}'),
        ("ItemUpdated", '["description"]'),
        ("ItemUpdated", '"description"'),
        ("ItemUpdated", "1"),
        ("ItemDeleted", "{"),
    ],
    ids=repr,
)
def test_undecodable_data_is_a_storage_error(event_type: str, data: str) -> None:
    with pytest.raises(StorageError, match="undecodable"):
        decode(ID, event_type, 1, data)


def test_an_older_version_without_an_upcaster_is_a_storage_error() -> None:
    with pytest.raises(StorageError):
        decode(ID, "ItemCreated", 0, '{"description":"x"}')


def test_older_versions_are_upcast_as_they_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend ItemCreated is at version 3, and versions 1 and 2 named the field differently.
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"text": data["desc"]}

    def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
        return {"description": data["text"]}

    monkeypatch.setitem(codec.SCHEMA_VERSIONS, "ItemCreated", 3)
    monkeypatch.setitem(codec.UPCASTERS, ("ItemCreated", 1), v1_to_v2)
    monkeypatch.setitem(codec.UPCASTERS, ("ItemCreated", 2), v2_to_v3)
    assert decode(ID, "ItemCreated", 1, '{"desc":"old"}') == ItemCreated(ID, "old")
    assert decode(ID, "ItemCreated", 2, '{"text":"mid"}') == ItemCreated(ID, "mid")
    assert decode(ID, "ItemCreated", 3, '{"description":"new"}') == ItemCreated(ID, "new")
