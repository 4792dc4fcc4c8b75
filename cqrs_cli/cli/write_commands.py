"""The write commands' behaviour, shared by the fast path and the typer commands:
build the command, call CommandService once, render the result."""

from __future__ import annotations

import sys

from ..domain.validation import MAX_DESCRIPTION_BYTES, InvalidInput
from . import output
from .state import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["create", "update", "delete"]

STDIN = "-"


def read_description_from_stdin() -> str:
    """The description piped on stdin, without one trailing newline (as `echo` adds)."""
    if sys.stdin is None or sys.stdin.isatty():
        raise InvalidInput(
            "the description is to be read from stdin ('-'), but stdin is a terminal: "
            "pipe the text in, e.g. echo 'text' | cqrs item create ID -d -"
        )
    raw = sys.stdin.buffer.read(MAX_DESCRIPTION_BYTES + 2)
    if len(raw) > MAX_DESCRIPTION_BYTES + 1:
        raise InvalidInput(
            f"invalid description: more than the limit of {MAX_DESCRIPTION_BYTES} bytes on stdin"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"invalid description: stdin is not valid UTF-8 (byte {exc.start})"
        ) from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


def run_write(
    kind: Kind,
    item_id: str,
    description: str | None = None,
    *,
    expect_version: int | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
    dry_run: bool = False,
    as_json: bool = False,
    sync: bool = False,
    quiet: bool = False,
) -> int:
    from ..domain.item import CreateItem, DeleteItem, UpdateItem
    from ..write.command_service import CommandService

    if quiet:
        state.quiet = True
    if description == STDIN:
        description = read_description_from_stdin()
    if kind == "create":
        command: CreateItem | UpdateItem | DeleteItem = CreateItem(item_id, description or "")
    elif kind == "update":
        assert description is not None
        command = UpdateItem(item_id, description)
    else:
        command = DeleteItem(item_id)
    # The catch-up after the write is a detached process here (sync/trigger.py), not
    # the service's thread: this process exits as soon as it has printed.
    with CommandService(state.paths(), catch_up=False) as service:
        result = service.execute(
            command,
            expected_version=expect_version,
            idempotency_key=idempotency_key,
            correlation_id=correlation_id,
            dry_run=dry_run,
        )
    if sync and not dry_run:
        from ..sync.runner import sync_projection

        sync_projection(state.paths())
    elif result.events and not (result.dry_run or result.already_applied):
        from ..sync.trigger import after_write

        after_write(state.paths())
    if as_json:
        output.json_line(result.to_json())
        return 0
    if result.dry_run:
        for event in result.events:
            output.data(
                f"Would append {event.event_type} to {event.stream_id} "
                f"(version {event.stream_version}): {event.data}"
            )
        output.note("Dry run: nothing was written.")
        return 0
    if result.already_applied:
        output.data(f"{result} (already applied, nothing appended)")
    else:
        output.data(str(result))
    if result.outcome == "unchanged":
        output.note("The description is already that: nothing appended.")
    if result.position is not None:
        output.note(f"Journal position: {result.position}")
    return 0
