"""The journal seam from the outside: locators the CLI and the Python API resolve, and
the services running on a journal object (the in-memory backend) with no file at all."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from common import InProcessCli, one_error_line

from cqrs_cli import CommandService, QueryService, StorePaths, sync_projection
from cqrs_cli.errors import UsageError
from cqrs_cli.journal.locator import find_journal, open_journal, redacted, scheme_of
from cqrs_cli.journal.memory_journal import MemoryJournal

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("locator", "scheme"),
    [
        ("journal.db", None),
        ("/srv/cqrs/journal.db", None),
        ("weird:name.db", None),  # a colon alone is part of a file name
        ("./postgresql://x", None),
        (f"postgresql://cqrs:{SECRET}@db.example/events", "postgresql"),
        ("MySQL+Driver://h/db", "mysql+driver"),
    ],
)
def test_a_locator_is_a_path_unless_it_is_a_url(locator: str, scheme: str | None) -> None:
    assert scheme_of(locator) == scheme


def test_redacting_hides_only_the_password() -> None:
    assert redacted(f"postgresql://cqrs:{SECRET}@db:5432/events?sslmode=require") == (
        "postgresql://cqrs:***@db:5432/events?sslmode=require"
    )
    assert redacted("postgresql://cqrs@db/events") == "postgresql://cqrs@db/events"
    assert redacted("/path/with:colon@sign") == "/path/with:colon@sign"


@pytest.mark.parametrize(
    "argv",
    [
        ["item", "create", "Item1"],
        ["item", "get", "Item1"],
        ["sync"],
        ["events"],
        ["journal", "verify"],
        ["journal", "export"],
    ],
)
def test_an_unknown_scheme_is_refused_in_one_line_and_creates_nothing(
    cli: InProcessCli, tmp_path: Path, argv: list[str]
) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    os.chdir(here)
    locator = f"mysql://cqrs:{SECRET}@db.example/events"
    result = cli("--journal", locator, *argv)
    assert result.code == 2
    line = one_error_line(result.err)
    assert "unknown journal scheme 'mysql'" in line
    assert SECRET not in result.err + result.out
    assert list(here.iterdir()) == [], "a URL was taken for a file name"


def test_the_python_api_resolves_locators_as_the_cli_does(tmp_path: Path) -> None:
    paths = StorePaths.resolve(journal=f"mysql://u:{SECRET}@h/db", projection=str(tmp_path / "p"))
    with pytest.raises(UsageError) as caught:
        CommandService(paths).create_item("Item1")
    assert SECRET not in str(caught.value)
    with pytest.raises(UsageError):
        sync_projection(paths)
    with pytest.raises(UsageError):
        find_journal("mysql://h/db")
    with pytest.raises(UsageError, match="empty"):
        open_journal("")


def test_the_services_work_on_an_in_memory_journal(tmp_path: Path) -> None:
    """Writes, batches, sync (by replay: there is no file to build from in bulk), reads,
    status and rebuild, with nothing written but the projection."""
    journal = MemoryJournal()
    projection = tmp_path / "projection.db"
    paths = StorePaths(str(tmp_path / "unused-journal.db"), str(projection))
    commands = CommandService(journal=journal)
    commands.create_item("Item1")
    commands.update_item("Item1", "Updated Description")
    commands.create_item("Item2", "second")
    commands.delete_item("Item2")
    with QueryService(paths, journal=journal) as queries:
        report = queries.sync()
        assert (report.applied, report.end) == (4, 4)
        assert str(queries.get_item("Item1")) == "Item1: Updated Description"
        assert queries.list_all_items() == ["Item1"]
        assert [hit.item_id for hit in queries.search("updated")] == ["Item1"]
        commands.create_item("Item3")
        assert queries.sync().applied == 1
        status = queries.status()
        assert (status.journal_head, status.journal_id) == (5, journal.journal_id)
        assert all(view.lag == 0 for view in status.views)
        rebuilt = queries.sync(rebuild=True)
        assert (rebuilt.applied, rebuilt.rebuilt) == (5, True)
        assert queries.list_all_items() == ["Item1", "Item3"]
    assert not [name for name in os.listdir(tmp_path) if "journal" in name]
    assert journal.head() == 5  # the caller's journal outlives the services


def test_the_readme_python_examples_run_as_written(tmp_path: Path) -> None:
    """Every ```python block of the README's Python API section runs and prints what its
    comments say it prints."""
    import contextlib
    import io
    import re

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", section, re.S)]
    assert len(blocks) >= 2
    for block in blocks:
        expected = re.findall(r"print\(.*\)  # (.*)", block)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile("import tempfile\n" + block, "README.md", "exec"), {})
        assert printed.getvalue().splitlines() == expected
