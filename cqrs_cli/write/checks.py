"""The checks a command and its options pass before anything is read or decided: the
same for single commands and for every line of a batch."""

from __future__ import annotations

from ..domain.item import Command, CreateItem, DeleteItem, UpdateItem
from ..domain.validation import InvalidInput, validate_description, validate_item_id
from ..text import printable
from .pipeline import BatchCommand

MAX_KEY_LENGTH = 200
"""Longest idempotency key or correlation id, in characters."""


def check_token(name: str, value: str | None) -> str | None:
    """`value` (an idempotency key or correlation id) in Unicode NFC, as ids are stored:
    a retry typed with a decomposed `é` is the same key. InvalidInput naming `name`."""
    if value is None:
        return None
    if not value or len(value) > MAX_KEY_LENGTH or not value.isprintable():
        raise InvalidInput(
            f"invalid {name} '{printable(value)}': use 1 to {MAX_KEY_LENGTH} printable characters"
        )
    if value.isascii():  # the usual key: nothing to normalise
        return value
    import unicodedata

    return unicodedata.normalize("NFC", value)


def check_version(expected: int | None) -> int | None:
    """`expected` (an expected version), or InvalidInput."""
    if expected is not None and not 0 <= expected < 2**63:
        raise InvalidInput(f"invalid expected version {expected}: it must be 0 or more")
    return expected


def validated(command: Command) -> Command:
    """`command` checked, with its id in the stored form (the same object when the id
    needed no normalising)."""
    item_id = validate_item_id(command.item_id)
    if not isinstance(command, DeleteItem):
        validate_description(command.description)
    if item_id == command.item_id:
        return command
    if isinstance(command, CreateItem):
        return CreateItem(item_id, command.description)
    if isinstance(command, UpdateItem):
        return UpdateItem(item_id, command.description)
    return DeleteItem(item_id)


def validated_line(line: BatchCommand) -> BatchCommand:
    """`line` with its command checked and normalised (`validated`) and its options
    checked; the same object when nothing needed normalising."""
    command = validated(line.command)
    # Tested here, not in the checks: most lines have none of them (once per line).
    if line.expected_version is not None:
        check_version(line.expected_version)
    key = line.idempotency_key
    if key is not None:
        key = check_token("idempotency key", key)
    if line.correlation_id is not None:
        check_token("correlation id", line.correlation_id)
    if command is line.command and key is line.idempotency_key:
        return line
    return line._replace(command=command, idempotency_key=key)
