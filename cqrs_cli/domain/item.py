"""The item decider: commands, events, state, `decide` and `evolve`. Pure: no I/O, no
clock, no ids; the write side passes in whatever the outside world must supply.

Rules:
- creating a live item is a conflict;
- updating or deleting an item that does not exist, or was deleted, is "not found";
- an update to the description the item already has decides nothing (no event);
- a deleted id may be created again: its stream goes on (the history keeps the earlier
  life), and the new ItemCreated starts the item afresh. Ids are names people reuse,
  and refusing them forever would make a delete impossible to undo.
"""

from __future__ import annotations

from ..errors import ConflictError, NotFoundError
from ..record import Record, set_field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


# Commands: what someone asks for, in the imperative.


class CreateItem(Record):
    __slots__ = ("item_id", "description")
    item_id: str
    description: str

    def __init__(self, item_id: str, description: str = "") -> None:
        set_field(self, "item_id", item_id)
        set_field(self, "description", description)


class UpdateItem(Record):
    __slots__ = ("item_id", "description")
    item_id: str
    description: str

    def __init__(self, item_id: str, description: str) -> None:
        set_field(self, "item_id", item_id)
        set_field(self, "description", description)


class DeleteItem(Record):
    __slots__ = ("item_id",)
    item_id: str

    def __init__(self, item_id: str) -> None:
        set_field(self, "item_id", item_id)


Command = CreateItem | UpdateItem | DeleteItem


# Events: what happened, in the past tense. Their stored shape is owned by codec.py.


class ItemCreated(Record):
    __slots__ = ("item_id", "description")
    item_id: str
    description: str

    def __init__(self, item_id: str, description: str) -> None:
        set_field(self, "item_id", item_id)
        set_field(self, "description", description)


class ItemUpdated(Record):
    __slots__ = ("item_id", "description")
    item_id: str
    description: str

    def __init__(self, item_id: str, description: str) -> None:
        set_field(self, "item_id", item_id)
        set_field(self, "description", description)


class ItemDeleted(Record):
    __slots__ = ("item_id",)
    item_id: str

    def __init__(self, item_id: str) -> None:
        set_field(self, "item_id", item_id)


Event = ItemCreated | ItemUpdated | ItemDeleted


# State: just what decisions need.


class ItemState(Record):
    """`version` counts the events of the item's stream (0: never written)."""

    __slots__ = ("version", "live", "description")
    version: int
    live: bool
    description: str

    def __init__(self, version: int = 0, live: bool = False, description: str = "") -> None:
        set_field(self, "version", version)
        set_field(self, "live", live)
        set_field(self, "description", description)

    @property
    def exists(self) -> bool:
        return self.version > 0


INITIAL = ItemState()
_LIVE = (ItemCreated, ItemUpdated)  # built once: `A | B` makes a new union at each call


def evolve(state: ItemState, event: Event) -> ItemState:
    version = state.version + 1
    if isinstance(event, _LIVE):
        return ItemState(version, True, event.description)
    return ItemState(version, False, "")


def fold(events: Iterable[Event], state: ItemState = INITIAL) -> ItemState:
    for event in events:
        state = evolve(state, event)
    return state


class ItemAlreadyExists(ConflictError):
    def __init__(self, item_id: str) -> None:
        super().__init__(f"item {item_id!r} already exists")
        self.item_id = item_id


class ItemNotFound(NotFoundError):
    def __init__(self, item_id: str, deleted: bool = False) -> None:
        why = "was deleted" if deleted else "does not exist"
        super().__init__(f"item {item_id!r} {why}")
        self.item_id = item_id
        self.deleted = deleted


def decide(command: Command, state: ItemState) -> list[Event]:
    """The events that carry out `command` on an item in `state`, or a typed error.
    An empty list means the command is already true and nothing needs recording."""
    item_id = command.item_id
    if isinstance(command, CreateItem):
        if state.live:
            raise ItemAlreadyExists(item_id)
        return [ItemCreated(item_id, command.description)]
    if not state.live:
        raise ItemNotFound(item_id, deleted=state.exists)
    if isinstance(command, UpdateItem):
        if command.description == state.description:
            return []
        return [ItemUpdated(item_id, command.description)]
    return [ItemDeleted(item_id)]
