"""The item decider, as given events / when command / then events (or an error), and the
rules for what an item id and a description may hold."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cqrs_cli.domain.item import (
    INITIAL,
    Command,
    CreateItem,
    DeleteItem,
    Event,
    ItemAlreadyExists,
    ItemCreated,
    ItemDeleted,
    ItemNotFound,
    ItemState,
    ItemUpdated,
    UpdateItem,
    decide,
    evolve,
    fold,
)
from cqrs_cli.domain.validation import (
    MAX_DESCRIPTION_BYTES,
    MAX_ID_LENGTH,
    InvalidInput,
    validate_description,
    validate_item_id,
)
from cqrs_cli.errors import ConflictError, CqrsError, NotFoundError, UsageError

ID = "Item1"
TERMINAL_ACTIVE = {"Cc", "Cf", "Zl", "Zp", "Cs"}  # controls, format chars, separators, surrogates


def when(given_events: list[Event], command: Command) -> list[Event]:
    """Decide `command` on the state folded from `given_events`."""
    return decide(command, fold(given_events))


# --- The decider -------------------------------------------------------------------------


def test_create_on_a_new_item_records_item_created() -> None:
    assert when([], CreateItem(ID, "first")) == [ItemCreated(ID, "first")]


def test_create_without_description_records_an_empty_one() -> None:
    assert when([], CreateItem(ID)) == [ItemCreated(ID, "")]


def test_create_on_a_live_item_is_item_already_exists() -> None:
    with pytest.raises(ItemAlreadyExists) as caught:
        when([ItemCreated(ID, "first")], CreateItem(ID, "again"))
    assert isinstance(caught.value, ConflictError)
    assert caught.value.exit_code == 4
    assert caught.value.item_id == ID
    assert str(caught.value) == "item 'Item1' already exists"


def test_create_on_a_deleted_item_creates_it_again_and_its_version_goes_on() -> None:
    history: list[Event] = [ItemCreated(ID, "first"), ItemDeleted(ID)]
    then = when(history, CreateItem(ID, "second life"))
    assert then == [ItemCreated(ID, "second life")]
    assert fold(history + then) == ItemState(version=3, live=True, description="second life")


@pytest.mark.parametrize(
    "history",
    [[], [ItemCreated(ID, "first"), ItemDeleted(ID)]],
    ids=["unknown", "deleted"],
)
@pytest.mark.parametrize("command", [UpdateItem(ID, "new"), DeleteItem(ID)], ids=repr)
def test_update_or_delete_without_a_live_item_is_item_not_found(
    history: list[Event], command: Command
) -> None:
    with pytest.raises(ItemNotFound) as caught:
        when(history, command)
    assert isinstance(caught.value, NotFoundError)
    assert caught.value.exit_code == 3
    assert caught.value.deleted is bool(history)
    why = "was deleted" if history else "does not exist"
    assert str(caught.value) == f"item 'Item1' {why}"


def test_update_with_a_new_description_records_item_updated() -> None:
    assert when([ItemCreated(ID, "first")], UpdateItem(ID, "second")) == [ItemUpdated(ID, "second")]


def test_update_with_the_same_description_records_nothing() -> None:
    assert when([ItemCreated(ID, "first")], UpdateItem(ID, "first")) == []


def test_delete_on_a_live_item_records_item_deleted() -> None:
    assert when([ItemCreated(ID, "first")], DeleteItem(ID)) == [ItemDeleted(ID)]


def test_deciding_the_same_update_twice_yields_nothing_new() -> None:
    history: list[Event] = [ItemCreated(ID, "first")]
    first = when(history, UpdateItem(ID, "second"))
    assert len(first) == 1
    assert when(history + first, UpdateItem(ID, "second")) == []


@pytest.mark.parametrize(
    ("command", "error"),
    [(CreateItem(ID, "x"), ItemAlreadyExists), (DeleteItem(ID), ItemNotFound)],
    ids=["create", "delete"],
)
def test_repeating_a_create_or_delete_is_refused_rather_than_recorded_twice(
    command: Command, error: type[CqrsError]
) -> None:
    history: list[Event] = [ItemCreated(ID, "first")] if isinstance(command, DeleteItem) else []
    first = when(history, command)
    assert len(first) == 1
    with pytest.raises(error):
        when(history + first, command)


def test_evolve_counts_versions_and_tracks_liveness() -> None:
    assert ItemState(0, False, "") == INITIAL
    assert not INITIAL.exists
    state = evolve(INITIAL, ItemCreated(ID, "a"))
    assert state == ItemState(1, True, "a")
    state = evolve(state, ItemUpdated(ID, "b"))
    assert state == ItemState(2, True, "b")
    state = evolve(state, ItemDeleted(ID))
    assert state == ItemState(3, False, "")
    assert state.exists


def test_events_and_commands_are_immutable() -> None:
    event = ItemCreated(ID, "a")
    with pytest.raises(AttributeError):
        event.description = "b"
    with pytest.raises(AttributeError):
        CreateItem(ID).item_id = "other"
    assert event == ItemCreated(ID, "a")
    assert hash(event) == hash(ItemCreated(ID, "a"))


# --- Property: fold(events) agrees with a simple reference model -------------------------


class Model:
    """What an item is, written the obvious way, to check the decider against."""

    def __init__(self) -> None:
        self.version = 0
        self.live = False
        self.description = ""

    def apply(self, command: Command) -> str:
        """The outcome: 'conflict', 'not_found', 'unchanged' or 'appended'."""
        if isinstance(command, CreateItem):
            if self.live:
                return "conflict"
            self.live, self.description = True, command.description
        elif not self.live:
            return "not_found"
        elif isinstance(command, UpdateItem):
            if command.description == self.description:
                return "unchanged"
            self.description = command.description
        else:
            self.live, self.description = False, ""
        self.version += 1
        return "appended"


descriptions = st.sampled_from(["", "a", "b", "line\nbreak"])
commands = st.one_of(
    st.builds(CreateItem, st.just(ID), descriptions),
    st.builds(UpdateItem, st.just(ID), descriptions),
    st.builds(DeleteItem, st.just(ID)),
)


@given(st.lists(commands, max_size=40))
def test_fold_of_decided_events_matches_the_reference_model(sequence: list[Command]) -> None:
    events: list[Event] = []
    model = Model()
    for command in sequence:
        expected = model.apply(command)
        try:
            new = decide(command, fold(events))
        except ItemAlreadyExists:
            outcome = "conflict"
        except ItemNotFound:
            outcome = "not_found"
        else:
            outcome = "appended" if new else "unchanged"
            assert len(new) <= 1
            events += new
        assert outcome == expected
        assert fold(events) == ItemState(model.version, model.live, model.description)


# --- Validation of ids ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "x" * (MAX_ID_LENGTH + 1),
        " Item1",
        "Item1 ",
        "\tItem1",
        "Item1\n",
        "\u3000Item1",  # ideographic space
        "Item\x1b[2J1",
        "Item\r1",
        "Item\n1",
        "Item\x9b1",  # C1 control: CSI
        "Item\u202e1",  # right-to-left override
        "Item\u200b1",  # zero-width space
        "Item\u2028" + "1",  # line separator
        "Item\udcff1",  # invalid UTF-8 on argv arrives as a lone surrogate
        "\ud800",
    ],
    ids=repr,
)
def test_invalid_item_ids_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_item_id(raw)
    assert isinstance(caught.value, UsageError)
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert message.startswith("invalid item id")
    # The message quotes the id, but never as raw terminal-active text.
    assert not [ch for ch in message if unicodedata.category(ch) in TERMINAL_ACTIVE]


@pytest.mark.parametrize(
    "raw",
    ["Item1", "Item 1", "a-b_c.d/e:f", "日本語", "emoji 🎉", "x" * MAX_ID_LENGTH, "-", "[/]"],
    ids=repr,
)
def test_valid_item_ids_are_kept(raw: str) -> None:
    assert validate_item_id(raw) == raw


def test_an_nfd_item_id_is_normalised_to_nfc() -> None:
    assert validate_item_id("Cafe\u0301") == "Caf\u00e9"
    assert validate_item_id("Caf\u00e9") == "Caf\u00e9"


def test_a_normalised_item_id_never_exceeds_the_length_limit() -> None:
    raw = "\u2adc" * MAX_ID_LENGTH
    try:
        stored = validate_item_id(raw)
    except InvalidInput:
        return
    assert len(stored) <= MAX_ID_LENGTH


# --- Validation of descriptions -----------------------------------------------------------


def test_a_description_with_nul_is_refused() -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        validate_description("before\x00after")


def test_a_description_over_one_mib_of_utf8_is_refused() -> None:
    with pytest.raises(InvalidInput, match="more than the limit"):
        validate_description("x" * (MAX_DESCRIPTION_BYTES + 1))
    # The limit is in bytes: half as many two-byte characters, plus one, are too many.
    with pytest.raises(InvalidInput):
        validate_description("\u00e9" * (MAX_DESCRIPTION_BYTES // 2 + 1))


def test_a_description_of_exactly_one_mib_is_kept() -> None:
    text = "x" * MAX_DESCRIPTION_BYTES
    assert validate_description(text) == text


def test_a_description_with_invalid_utf8_is_refused() -> None:
    with pytest.raises(InvalidInput, match="UTF-8"):
        validate_description("bad \udcff byte")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "line one\nline two\n",
        "\ttabbed\r\n",
        "\x1b[31mred\x1b[0m and \x07 bell",
        "bidi \u202e override and zero\u200bwidth",
        "  padded  ",
        "Cafe\u0301",  # descriptions are not normalised
        "[bold]not markup[/]",
    ],
    ids=repr,
)
def test_descriptions_are_kept_exactly(text: str) -> None:
    assert validate_description(text) == text
