"""Time travel: `cqrs item get ID --at POS | --as-of TIME` folds the item's events from the
journal up to that point; a property test holds it to what a projection built from the
same events shows."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import pytest
from common import InProcessCli, event_rows, one_error_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripting_helpers import lines_of

from cqrs_cli.cli.main import run
from cqrs_cli.domain.item import Command, CreateItem, DeleteItem, ItemNotFound, UpdateItem
from cqrs_cli.errors import CqrsError
from cqrs_cli.journal.locator import create_journal
from cqrs_cli.journal.sqlite_journal import SqliteJournal
from cqrs_cli.journal.transfer import export_lines, import_journal
from cqrs_cli.read.time_travel import item_at
from cqrs_cli.write.command_service import CommandService


@pytest.fixture
def times(store: Path) -> list[str]:
    """Item1's life, with Other in between; recorded_at of positions 1 to 5:
    1 Item1 created "first", 2 Other created, 3 Item1 updated "second",
    4 Item1 deleted, 5 Item1 created again "third"."""
    with CommandService() as service:
        service.create_item("Item1", "first")
        service.create_item("Other", "other")
        service.update_item("Item1", "second")
        service.delete_item("Item1")
        service.create_item("Item1", "third")
    return [str(row[7]) for row in event_rows(store / "journal.db")]


def note(where: str) -> str:
    return f"(read from the journal as of {where}, not from the projection)\n"


@pytest.mark.parametrize(
    ("position", "shown"),
    [(1, "first"), (2, "first"), (3, "second"), (5, "third"), (6, "third"), (10**6, "third")],
)
def test_at_shows_the_item_as_it_was_at_a_position(
    cli: InProcessCli, times: list[str], position: int, shown: str
) -> None:
    assert cli("item", "get", "Item1", "--at", str(position)) == (
        0,
        f"Item1: {shown}\n",
        note(f"position {position}"),
    )


def test_at_json(cli: InProcessCli, times: list[str]) -> None:
    code, out, _ = cli("item", "get", "Item1", "--at", "3", "--json")
    assert code == 0
    assert json.loads(out) == {
        "item_id": "Item1",
        "description": "second",
        "version": 2,
        "deleted": False,
        "created_at": times[0],
        "updated_at": times[2],
        "position": 3,
    }
    code, out, _ = cli("item", "get", "Item1", "--at", "5", "--json")
    assert json.loads(out)["created_at"] == times[4]  # the re-creation
    assert json.loads(out)["version"] == 4


@pytest.mark.parametrize(
    ("item", "position", "why"),
    [("Item1", 0, "does not exist"), ("Other", 1, "does not exist"), ("Item1", 4, "was deleted")],
)
def test_at_is_exit_3_before_the_item_existed_and_while_deleted(
    cli: InProcessCli, times: list[str], item: str, position: int, why: str
) -> None:
    code, out, err = cli("item", "get", item, "--at", str(position))
    assert (code, out) == (3, "")
    assert one_error_line(err) == f"cqrs: error: item '{item}' {why}\n"


def test_include_deleted_shows_the_deleted_item_with_its_last_description(
    cli: InProcessCli, times: list[str]
) -> None:
    assert cli("item", "get", "Item1", "--at", "4", "--include-deleted") == (
        0,
        "Item1: second (deleted)\n",
        note("position 4"),
    )
    code, out, _ = cli("item", "get", "Item1", "--at", "4", "--include-deleted", "--json")
    assert code == 0
    view = json.loads(out)
    assert (view["deleted"], view["version"], view["position"]) == (True, 3, 4)
    assert view["updated_at"] == times[3]
    assert cli("item", "get", "Item1", "--at", "0", "--include-deleted").code == 3


def shifted(moment: str, offset_hours: int) -> str:
    """The same instant written with another UTC offset."""
    parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return parsed.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


def test_as_of_shows_the_item_as_it_was_at_a_time(cli: InProcessCli, times: list[str]) -> None:
    def get(moment: str) -> tuple[int, str]:
        code, out, err = cli("item", "get", "Item1", "--as-of", moment)
        if code == 0:
            assert err.startswith("(read from the journal as of time ")
        return code, out

    assert get(times[0]) == (0, "Item1: first\n")  # an event recorded at that instant counts
    assert get(times[1]) == (0, "Item1: first\n")
    assert get(times[2]) == (0, "Item1: second\n")
    assert get(shifted(times[2], 2)) == (0, "Item1: second\n")
    assert get(shifted(times[2], -7)) == (0, "Item1: second\n")
    assert get(times[2].rstrip("Z")) == (0, "Item1: second\n")  # no offset: UTC
    assert get(times[3])[0] == 3  # deleted then
    assert get(times[4]) == (0, "Item1: third\n")
    assert get("2999-01-01") == (0, "Item1: third\n")
    assert get("2000-01-01T00:00:00Z")[0] == 3


def test_the_note_names_the_time_in_utc(cli: InProcessCli, times: list[str]) -> None:
    _, _, err = cli("item", "get", "Item1", "--as-of", shifted(times[2], 2))
    assert err == note(f"time {times[2]}")


def test_time_travel_reads_the_journal_not_the_projection(
    cli: InProcessCli, times: list[str], store: Path
) -> None:
    assert cli("item", "get", "Item1", "--at", "3").code == 0
    assert not (store / "projection.db").exists()  # none was needed, none was made
    assert cli("item", "get", "Item1")[0] == 5  # a plain get needs one: `run cqrs sync`


def test_ids_are_normalised(cli: InProcessCli, store: Path) -> None:
    CommandService().create_item("Caf\u00e9", "coffee")
    assert cli("item", "get", "Cafe\u0301", "--at", "1").out == "Caf\u00e9: coffee\n"


def test_no_journal_is_exit_3_and_creates_nothing(cli: InProcessCli, store: Path) -> None:
    code, out, err = cli("item", "get", "Item1", "--at", "1")
    assert (code, out) == (3, "")
    assert one_error_line(err) == "cqrs: error: item 'Item1' does not exist\n"
    assert not (store / "journal.db").exists()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--at", "1", "--sync"], "--sync and --min-position do not apply"),
        (["--as-of", "2999-01-01", "--sync"], "--sync and --min-position do not apply"),
        (["--at", "1", "--min-position", "1"], "--sync and --min-position do not apply"),
        (["--at", "1", "--as-of", "2999-01-01"], "give --at or --as-of, not both"),
        (["--as-of", "yesterday"], "invalid time 'yesterday'"),
        (["--as-of", "2026-13-01"], "invalid time"),
        (["--as-of", ""], "invalid time"),
    ],
)
def test_invalid_combinations_and_values_are_exit_2(
    cli: InProcessCli, times: list[str], options: list[str], words: str
) -> None:
    code, out, err = cli("item", "get", "Item1", *options)
    assert (code, out) == (2, "")
    assert words in one_error_line(err)


@pytest.mark.parametrize("position", ["three", "-1", "1.5"])
def test_a_position_that_is_not_one_is_exit_2(
    cli: InProcessCli, times: list[str], position: str
) -> None:
    code, out, err = cli("item", "get", "Item1", "--at", position)
    assert (code, out) == (2, "")
    one_error_line(err, "cqrs item get: error: ")


# --- Property: --at P agrees with a projection of the events up to P ----------------------

IDS = ("A", "B")
commands = st.lists(
    st.one_of(
        st.builds(CreateItem, st.sampled_from(IDS), st.sampled_from(["", "x", "y"])),
        st.builds(UpdateItem, st.sampled_from(IDS), st.sampled_from(["", "x", "y"])),
        st.builds(DeleteItem, st.sampled_from(IDS)),
    ),
    max_size=8,
)


def truncated_export(lines: list[str], position: int) -> list[bytes]:
    """The export of the journal as it was at `position`: header, the events up to it,
    and a trailer that matches them."""
    events = [json.loads(line) for line in lines[1:-1]]
    kept = [e for e in events if e["position"] <= position]
    last_hash = kept[-1]["hash"] if kept else "0" * 64
    trailer = json.dumps({"end": True, "events": len(kept), "last_hash": last_hash})
    return lines_of("".join([lines[0], *lines[1 : 1 + len(kept)], trailer, "\n"]))


def projected_items(projection: Path) -> dict[str, tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{projection}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT item_id, description, version, deleted, created_at, updated_at, position "
            "FROM items"
        ).fetchall()
    finally:
        conn.close()
    return {str(row[0]): (*row[:3], bool(row[3]), *row[4:]) for row in rows}


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(commands)
def test_at_equals_the_projection_of_the_events_up_to_that_position(
    sequence: list[Command],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        with CommandService(str(base)) as service:
            for command in sequence:
                try:
                    service.execute(command)
                except CqrsError:
                    pass  # refused by the rules: nothing appended
        with SqliteJournal.open(str(base / "journal.db")) as journal:
            lines = list(export_lines(journal))
            for position in range(journal.head() + 1):
                copy = base / f"journal-{position}.db"
                import_journal(
                    truncated_export(lines, position), partial(create_journal, str(copy))
                )
                projection = base / f"projection-{position}.db"
                sync = ["-q", "--journal", str(copy), "--projection", str(projection), "sync"]
                assert run(sync) == 0
                projected = projected_items(projection)
                for item_id in IDS:
                    try:
                        view = item_at(journal, item_id, position=position, include_deleted=True)
                    except ItemNotFound:
                        assert item_id not in projected
                        continue
                    assert tuple(view.as_dict().values()) == projected[item_id]
