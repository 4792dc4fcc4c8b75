"""Files that are not what cqrs expects, given as the journal (--journal) or as the
projection (--projection), for a write, two reads, `sync` and `journal verify`.

Each is refused with its documented exit code and exactly one stderr line naming the
file and the problem, with no traceback, and the file is left byte for byte as it was,
without a -wal or -shm beside it. A command that does not use the role's file (a write
or `journal verify` never opens the projection) succeeds and leaves it alone too.

Note: a truncated file with a non-empty -wal beside it is accepted by design (the
missing pages may be in the WAL after an interrupted checkpoint); the truncated files
here have none."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
from common import InProcessCli, child_env, event_rows, one_error_line, run_cqrs
from projection_helpers import assert_projection_is_exact
from reliability_helpers import assert_clean_failure, checkpoint_wal, fingerprint, side_files

from cqrs_cli import CommandService
from cqrs_cli.paths import StorePaths
from cqrs_cli.sync.runner import sync_projection

# --- Real files to copy and spoil -----------------------------------------------------------


class Templates(NamedTuple):
    journal: Path
    projection: Path
    other_journal: Path
    other_projection: Path


def build_store(folder: Path, prefix: str, items: int) -> tuple[Path, Path]:
    """A journal of `items` items with 1 KB descriptions (a file of many pages) and its
    synced projection, each alone in its main file (no WAL)."""
    paths = StorePaths(str(folder / f"{prefix}journal.db"), str(folder / f"{prefix}projection.db"))
    with CommandService(paths) as service:
        service.create_item("A", "the first item")
        for n in range(items):
            service.create_item(f"item-{n:03d}", f"description {n} " + "x" * 1000)
    sync_projection(paths)
    for path in (paths.journal, paths.projection):
        checkpoint_wal(path)
    return Path(paths.journal), Path(paths.projection)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    folder = tmp_path_factory.mktemp("wrong-files-templates")
    journal, projection = build_store(folder, "", 120)
    other_journal, other_projection = build_store(folder, "other-", 5)
    return Templates(journal, projection, other_journal, other_projection)


@pytest.fixture
def store(isolated_home: Path, templates: Templates) -> Path:
    """This test's home, holding a copy of the template store (items A, item-000 ...)."""
    isolated_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(templates.journal, isolated_home / "journal.db")
    shutil.copyfile(templates.projection, isolated_home / "projection.db")
    return isolated_home


# --- The wrong files --------------------------------------------------------------------------

Role = str  # "journal" or "projection"
Make = Callable[[Path, Role, Templates], Path]


def real_file(templates: Templates, role: Role) -> Path:
    return templates.journal if role == "journal" else templates.projection


def text_file(folder: Path, role: Role, templates: Templates) -> Path:
    path = folder / "notes.txt"
    path.write_text("this is not a database\n" * 50)
    return path


def empty_file(folder: Path, role: Role, templates: Templates) -> Path:
    path = folder / "empty.db"
    path.touch()
    return path


def directory(folder: Path, role: Role, templates: Templates) -> Path:
    path = folder / "a-folder.db"
    path.mkdir()
    (path / "inside.txt").write_text("keep me")
    return path


def truncated(folder: Path, role: Role, templates: Templates) -> Path:
    """A real journal or projection cut to 60% of its size (no -wal beside it)."""
    content = real_file(templates, role).read_bytes()
    page_size = int.from_bytes(content[16:18], "big")
    assert len(content) > 10 * page_size, "the template should span many pages"
    path = folder / f"truncated-{role}.db"
    path.write_bytes(content[: len(content) * 6 // 10])
    return path


def header_spoiled(fill: bytes) -> Make:
    def make(folder: Path, role: Role, templates: Templates) -> Path:
        content = bytearray(real_file(templates, role).read_bytes())
        content[16:24] = fill * 8
        path = folder / f"spoiled-{role}.db"
        path.write_bytes(bytes(content))
        return path

    make.__name__ = f"header_{fill.hex()}"
    return make


def other_kind(folder: Path, role: Role, templates: Templates) -> Path:
    """The other kind of cqrs file: a projection as the journal, a journal as the
    projection (both of another store)."""
    source = templates.other_projection if role == "journal" else templates.other_journal
    path = folder / f"other-kind-{role}.db"
    shutil.copyfile(source, path)
    return path


def other_program(folder: Path, role: Role, templates: Templates) -> Path:
    path = folder / "someone-elses.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, data TEXT)")
    conn.execute("INSERT INTO events (data) VALUES ('theirs')")
    conn.commit()
    conn.close()
    return path


def newer_schema(folder: Path, role: Role, templates: Templates) -> Path:
    path = folder / f"newer-{role}.db"
    shutil.copyfile(real_file(templates, role), path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    assert side_files(path) == []
    return path


def another_journals_projection(folder: Path, role: Role, templates: Templates) -> Path:
    path = folder / "another-journals-projection.db"
    shutil.copyfile(templates.other_projection, path)
    return path


class Case(NamedTuple):
    make: Make
    problem: str  # a regular expression the error line must match


CASES: dict[str, Callable[[Role], Case]] = {
    "text": lambda role: Case(text_file, r"not a cqrs \w+ \(not an SQLite database\)"),
    "empty": lambda role: Case(empty_file, "empty file"),
    "directory": lambda role: Case(directory, "is a directory"),
    "truncated": lambda role: Case(truncated, f"truncated cqrs {role}"),
    "header-zeroed": lambda role: Case(header_spoiled(b"\x00"), f"corrupt cqrs {role}"),
    "header-garbage": lambda role: Case(header_spoiled(b"\xff"), f"corrupt cqrs {role}"),
    "other-kind": lambda role: Case(
        other_kind,
        "it is a cqrs projection" if role == "journal" else "it is a cqrs journal",
    ),
    "other-program": lambda role: Case(other_program, "an SQLite database of another program"),
    "newer-schema": lambda role: Case(newer_schema, "schema version 99 is newer"),
}
PROJECTION_ONLY = {"another-journal": Case(another_journals_projection, "another journal")}

WRITE = ("item", "create", "New", "-d", "new")
COMMANDS = {
    "write": WRITE,
    "get": ("item", "get", "A"),
    "list": ("item", "list"),
    "sync": ("sync",),
    "verify": ("journal", "verify"),
}
USES_PROJECTION = {"get", "list", "sync"}


def matrix(role: Role) -> list[object]:
    cases = {name: case(role) for name, case in CASES.items()}
    if role == "projection":
        cases.update(PROJECTION_ONLY)
    params: list[object] = []
    for name, case in cases.items():
        for command in COMMANDS:
            params.append(pytest.param(case, command, id=f"{name}-{command}"))
    return params


def make_wrong(case: Case, role: Role, templates: Templates, tmp_path: Path) -> Path:
    folder = tmp_path / "wrong"
    folder.mkdir()
    return case.make(folder, role, templates)


def assert_untouched(wrong: Path, before: object, *, opened: bool = False) -> None:
    """Byte for byte as it was; and, for a file refused before SQLite opened it, no
    -wal or -shm beside it. (`opened`: a real projection of another journal, which SQLite
    must open to read whose it is; that read leaves SQLite's usual -wal and -shm.)"""
    assert fingerprint(wrong) == before, f"{wrong} was changed"
    if not opened:
        assert side_files(wrong) == [], f"SQLite files were created beside {wrong}"


def assert_refused(code: int, out: str, err: str, wrong: Path, problem: str) -> None:
    assert (code, out) == (7, ""), (code, out, err)
    line = one_error_line(err)
    assert line.startswith(f"cqrs: error: {wrong}: "), line
    assert re.search(problem, line), (problem, line)


@pytest.mark.parametrize(("case", "command"), matrix("journal"))
def test_a_wrong_file_given_as_the_journal_is_refused_and_left_untouched(
    store: Path, templates: Templates, tmp_path: Path, cli: InProcessCli, case: Case, command: str
) -> None:
    wrong = make_wrong(case, "journal", templates, tmp_path)
    before = fingerprint(wrong)
    projection_before = fingerprint(store / "projection.db")

    code, out, err = cli("--journal", str(wrong), *COMMANDS[command])

    assert_refused(code, out, err, wrong, case.problem)
    assert_untouched(wrong, before)
    assert fingerprint(store / "projection.db") == projection_before


@pytest.mark.parametrize(("case", "command"), matrix("projection"))
def test_a_wrong_file_given_as_the_projection_is_refused_and_left_untouched(
    store: Path, templates: Templates, tmp_path: Path, cli: InProcessCli, case: Case, command: str
) -> None:
    wrong = make_wrong(case, "projection", templates, tmp_path)
    before = fingerprint(wrong)
    journal_events = len(event_rows(store / "journal.db"))

    code, out, err = cli("--projection", str(wrong), *COMMANDS[command])

    if case.make is another_journals_projection and command == "sync":
        # Not refused: sync rebuilds a projection of another journal, saying why first.
        assert code == 0, err
        assert err.startswith("Rebuilding the projection: the projection was built from another")
        assert out.startswith("Rebuilt from")
        assert_projection_is_exact(store / "journal.db", wrong, tmp_path)
        return
    if command in USES_PROJECTION:
        assert_refused(code, out, err, wrong, case.problem)
    else:
        # A write and `journal verify` never open the projection.
        assert code == 0, err
        expected = journal_events + (1 if command == "write" else 0)
        assert len(event_rows(store / "journal.db")) == expected
    assert_untouched(wrong, before, opened=case.make is another_journals_projection)


@pytest.mark.parametrize("command", COMMANDS)
def test_the_same_path_for_journal_and_projection_is_a_usage_error(
    store: Path, cli: InProcessCli, command: str
) -> None:
    journal = store / "journal.db"
    before = fingerprint(journal)
    for spelling in (journal, store / ".." / store.name / "journal.db"):
        code, out, err = cli(
            "--journal", str(journal), "--projection", str(spelling), *COMMANDS[command]
        )
        assert (code, out) == (2, "")
        assert "the journal and the projection must be different files" in one_error_line(err)
        assert str(journal) in err
    assert fingerprint(journal) == before


# --- The same refusals from a real process ------------------------------------------------------


def process_params() -> list[object]:
    params: list[object] = []
    for name, case in CASES.items():
        params.append(pytest.param("journal", case("journal"), WRITE, id=f"journal-{name}-write"))
        params.append(
            pytest.param(
                "projection",
                case("projection"),
                ("sync",),
                id=f"projection-{name}-sync",
            )
        )
    params.append(
        pytest.param(
            "projection", PROJECTION_ONLY["another-journal"], ("item", "list"), id="another-list"
        )
    )
    return params


@pytest.mark.parametrize(("role", "case", "argv"), process_params())
def test_a_wrong_file_is_refused_by_the_installed_command(
    store: Path,
    templates: Templates,
    tmp_path: Path,
    cqrs_exe: str,
    role: Role,
    case: Case,
    argv: tuple[str, ...],
) -> None:
    wrong = make_wrong(case, role, templates, tmp_path)
    before = fingerprint(wrong)

    result = run_cqrs(cqrs_exe, f"--{role}", str(wrong), *argv, env=child_env(store))

    line = assert_clean_failure(result, 7, str(wrong))
    assert re.search(case.problem, line), (case.problem, line)
    assert_untouched(wrong, before, opened=case.make is another_journals_projection)


def test_the_same_path_twice_is_a_usage_error_from_the_installed_command(
    store: Path, cqrs_exe: str
) -> None:
    journal = store / "journal.db"
    before = fingerprint(journal)
    for argv in (WRITE, ("sync",), ("journal", "verify")):
        result = run_cqrs(
            cqrs_exe,
            "--journal",
            str(journal),
            "--projection",
            str(journal),
            *argv,
            env=child_env(),
        )
        assert_clean_failure(result, 2, "must be different files", str(journal))
    assert fingerprint(journal) == before


def test_a_symlink_to_the_journal_given_as_the_projection_is_refused(
    store: Path, cli: InProcessCli
) -> None:
    # Another spelling of the same file that os.path.abspath cannot see through: the
    # projection's own check still recognises a journal.
    journal = store / "journal.db"
    link = store / "link-to-journal.db"
    link.symlink_to(journal)
    before = fingerprint(journal)
    for argv in (COMMANDS["get"], COMMANDS["list"], COMMANDS["sync"]):
        code, out, err = cli("--projection", str(link), *argv)
        assert_refused(code, out, err, link, "it is a cqrs journal")
    assert fingerprint(journal) == before
