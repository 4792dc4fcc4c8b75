"""Property: however sync is run (in small batches between writes, in Python or in SQL
from the attached journal, once at the end, or as a rebuild, in SQL or replayed through
the views' incremental apply), the projection is the same, and it is what folding the
journal says. The items view's SQL (its bulk build, its range apply) is the deliberate
second expression of its fold (views/items.py): this holds them together."""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st
from projection_helpers import (
    Dump,
    assert_agrees_with_fold,
    decoded,
    dump_projection,
    fold_journal,
    journal_events,
)

from cqrs_cli import CommandService, StorePaths
from cqrs_cli.domain.item import ItemDeleted
from cqrs_cli.errors import ConflictError, NotFoundError
from cqrs_cli.journal.records import RecordedEvent
from cqrs_cli.sync import runner
from cqrs_cli.sync.runner import Syncer
from cqrs_cli.views import item_history, items, registry
from cqrs_cli.views.base import View

ITEM_IDS = ["a", "b", "c", "Item1"]
descriptions = st.one_of(
    st.sampled_from(["", "x", "Blue widget", "red widget", "[b]x[/] \x1b[2J", "é\n\t"]),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=6),
)
commands = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(ITEM_IDS), descriptions),
        st.tuples(st.just("update"), st.sampled_from(ITEM_IDS), descriptions),
        st.tuples(st.just("delete"), st.sampled_from(ITEM_IDS), st.just("")),
    ),
    max_size=40,
)
# The items view without its bulk build: a build from scratch replays it through `apply`.
ITEMS_BY_APPLY = View(
    items.NAME,
    items.VERSION,
    create=items.create,
    drop=items.drop,
    apply=items.apply,
    depends_on=items.VIEW.depends_on,
)
# (how many commands to apply next, batch size of the sync that follows them)
schedules = st.lists(st.tuples(st.integers(0, 8), st.integers(1, 6)), min_size=1, max_size=10)


def apply(service: CommandService, command: tuple[str, str, str]) -> None:
    kind, item_id, description = command
    try:
        if kind == "create":
            service.create_item(item_id, description)
        elif kind == "update":
            service.update_item(item_id, description)
        else:
            service.delete_item(item_id)
    except (ConflictError, NotFoundError):
        pass  # the domain refused it: nothing was appended


def sync(
    paths: StorePaths, *, batch_size: int = 2000, rebuild: bool = False, in_sql: bool = False
) -> None:
    """`in_sql`: a catch-up of any size goes in SQL (sync/apply.py), as one of at
    least runner.SQL_CATCH_UP_MIN events does; else catch-ups this small stay in Python."""
    with (
        mock.patch.object(runner, "SQL_CATCH_UP_MIN", 0 if in_sql else runner.SQL_CATCH_UP_MIN),
        Syncer(paths, batch_size=batch_size) as syncer,
    ):
        syncer.run(rebuild=rebuild)


def history_row(event: RecordedEvent) -> tuple[object, ...]:
    change = decoded(event)
    description = None if isinstance(change, ItemDeleted) else change.description
    return (
        event.position,
        event.stream_id,
        event.stream_version,
        event.event_type,
        description,
        event.recorded_at,
    )


def assert_is_the_journal_folded(dump: Dump, journal: Path) -> None:
    """item_history is the journal, event for event; items and item_search are what the
    domain's fold of each item's events says; every view has reached the head."""
    events = journal_events(journal)
    assert dump["item_history"] == [history_row(event) for event in events]
    head = events[-1].position if events else 0
    assert dump["views"] == sorted((view.name, view.version, head) for view in registry.views())
    assert_agrees_with_fold(dump, fold_journal(journal))


@settings(max_examples=30, deadline=None)
@given(commands=commands, schedule=schedules)
def test_incremental_once_and_rebuilt_projections_agree_with_the_journal(
    commands: list[tuple[str, str, str]], schedule: list[tuple[int, int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        journal = root / "journal.db"
        incremental = StorePaths(str(journal), str(root / "incremental.db"))
        # The same batches, applied in SQL from the attached journal file.
        in_sql = StorePaths(str(journal), str(root / "in_sql.db"))
        once = StorePaths(str(journal), str(root / "once.db"))
        rebuilt = StorePaths(str(journal), str(root / "rebuilt.db"))
        replayed = StorePaths(str(journal), str(root / "replayed.db"))
        applied = StorePaths(str(journal), str(root / "applied.db"))
        rest = [view for view in registry.views() if view.name not in ("item_history", "items")]

        pending = list(commands)
        with CommandService(incremental) as service:
            for count, batch_size in schedule:
                for command in pending[:count]:
                    apply(service, command)
                del pending[:count]
                sync(incremental, batch_size=batch_size)
                sync(in_sql, batch_size=batch_size, in_sql=True)
            for command in pending:
                apply(service, command)
        sync(incremental, batch_size=schedule[-1][1])
        sync(in_sql, batch_size=schedule[-1][1], in_sql=True)
        sync(once)
        sync(rebuilt, rebuild=True)
        # The way a build from scratch goes when some event needs upcasting: item_history
        # replayed through its incremental apply instead of read from the journal in SQL.
        with mock.patch("cqrs_cli.sync.bulk.current", return_value=False):
            sync(replayed, rebuild=True, batch_size=schedule[0][1])
        # And items too: its incremental fold (views/items.py, next_item_row) against
        # its bulk SQL, both from nothing.
        with mock.patch.object(registry, "_VIEWS", [item_history.VIEW, ITEMS_BY_APPLY, *rest]):
            sync(applied, rebuild=True, batch_size=schedule[-1][1])

        if not journal.exists():
            # Nothing was ever written: sync leaves no files behind.
            assert sorted(root.iterdir()) == []
            return
        expected = dump_projection(once.projection)
        assert_is_the_journal_folded(expected, journal)
        assert dump_projection(incremental.projection) == expected
        assert dump_projection(in_sql.projection) == expected
        assert dump_projection(rebuilt.projection) == expected
        assert dump_projection(replayed.projection) == expected
        assert dump_projection(applied.projection) == expected
        sync(incremental, rebuild=True)
        assert dump_projection(incremental.projection) == expected
