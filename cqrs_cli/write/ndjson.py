"""Reading batch commands for `cqrs apply`: one JSON object per line.

    {"op": "create", "id": "Item1", "description": "text", "key": "k1"}
    {"op": "update", "id": "Item1", "description": "new text", "expect_version": 1}
    {"op": "delete", "id": "Item1"}

Fields: op (create | update | delete), id, description (create: optional, update:
required, delete: not allowed), expect_version (an integer >= 0), key (idempotency
key), correlation_id. Anything else is refused, with the line's number: a typo in a
field name must not silently drop an expected version.
"""

from __future__ import annotations

import json

from ..domain.item import Command, CreateItem, DeleteItem, UpdateItem
from ..domain.validation import InvalidInput
from .pipeline import BatchCommand as BatchCommand  # its home is pipeline.py

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

FIELDS = frozenset({"op", "id", "description", "expect_version", "key", "correlation_id"})


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not a number JSON allows")


def _no_repeats(pairs: list[tuple[str, object]]) -> dict[str, object]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"field {name!r} is given twice")
            seen.add(name)
    return fields


# Built once: json.loads with options builds a new decoder on every call. A field given
# twice is refused: with JSON's usual "last one wins", a repeated expect_version could
# silently lift the check the first one asked for. Finding repeats needs the pairs
# (`_strict`), which costs more than the whole parse; `_repeats_possible` says, from the
# text, when a line could hold one, so that most lines take the plain decoder only.
_plain = json.JSONDecoder(parse_constant=_no_constants)
_strict = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_no_repeats).decode
# The decoder's C scanner, called directly: JSONDecoder.decode wraps it in Python with
# two regular-expression matches for the whitespace around the value.
_scan: Callable[[str, int], tuple[object, int]] = _plain.scan_once  # type: ignore[attr-defined]
_LINE_ENDS = ("", "\n", "\r\n")


def _repeats_possible(text: str, fields: dict[str, object]) -> bool:
    # Without a backslash, every quote in the text opens or closes a string, and the
    # text holds at least the strings of the object (its names and its string values).
    # If it holds exactly those, no name is given twice. (Anything else, such as a
    # nested value, goes to the strict decoder, which decides.)
    if "\\" in text:
        return True
    strings = len(fields)
    for value in fields.values():
        if type(value) is str:
            strings += 1
    return text.count('"') != 2 * strings


def _decode(text: str) -> object:
    """The JSON value of a line; ValueError or RecursionError if it is not JSON."""
    value: object = None
    end = -1
    if text[:1] == "{":  # the usual line: the scanner alone
        try:
            value, end = _scan(text, 0)
        except (StopIteration, ValueError, RecursionError):
            end = -1  # the full decoder below words the error
    if end < 0 or text[end:] not in _LINE_ENDS:
        value = _plain.decode(text)
    if type(value) is dict and _repeats_possible(text, value):
        value = _strict(text)
    return value


_STRINGS = frozenset({"id", "description", "key", "correlation_id"})
_known = FIELDS.issuperset


def parse_line(raw: bytes | str, line: int) -> BatchCommand | None:
    """The command on one line; None for a blank line; InvalidInput naming the line.
    (Written for speed: `cqrs apply` calls it once per line of files of millions.)"""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"line {line}: not valid UTF-8 (byte {exc.start})") from None
    try:
        fields = _decode(text)
    except RecursionError:
        raise InvalidInput(f"line {line}: JSON nested too deeply") from None
    except ValueError as exc:
        if not text.strip():
            return None
        raise InvalidInput(f"line {line}: invalid JSON ({exc})") from None
    if type(fields) is not dict:
        raise InvalidInput(f"line {line}: expected a JSON object with an 'op' field")
    if not _known(fields):
        unknown = sorted(set(fields) - FIELDS)[0]
        raise InvalidInput(f"line {line}: unknown field {unknown!r}")
    op = fields.get("op")
    if op not in ("create", "update", "delete"):
        raise InvalidInput(f"line {line}: 'op' must be create, update or delete, not {op!r}")
    for name, value in fields.items():
        if type(value) is not str and value is not None and name in _STRINGS:
            raise InvalidInput(f"line {line}: field {name!r} must be a string")
    item_id = fields.get("id")
    if item_id is None:
        raise InvalidInput(f"line {line}: missing field 'id'")
    description = fields.get("description")
    command: Command
    if op == "create":
        command = CreateItem(item_id, description or "")
    elif op == "update":
        if description is None:
            raise InvalidInput(f"line {line}: missing field 'description'")
        command = UpdateItem(item_id, description)
    else:
        if "description" in fields:
            raise InvalidInput(f"line {line}: a delete takes no description")
        command = DeleteItem(item_id)
    expected = fields.get("expect_version")
    if expected is not None and (
        type(expected) is not int or not 0 <= expected < 2**63  # bool is not a version
    ):
        raise InvalidInput(f"line {line}: 'expect_version' must be an integer, 0 or more")
    return BatchCommand(line, command, expected, fields.get("key"), fields.get("correlation_id"))


def parse_lines(lines: Iterable[bytes | str]) -> Iterator[BatchCommand]:
    """The commands of an NDJSON stream, lazily (a file of millions of lines is never
    held in memory)."""
    for number, raw in enumerate(lines, start=1):
        command = parse_line(raw, number)
        if command is not None:
            yield command
