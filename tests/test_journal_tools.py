"""`cqrs journal verify|export|import|backup`: the journal as a file a user can check,
move and copy, and every kind of tampering with it caught."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from common import (
    SUBPROCESS_TIMEOUT,
    InProcessCli,
    event_rows,
    one_error_line,
    run_cqrs,
    sha256_of,
    wait_until,
)
from scripting_helpers import journal_id, rechain, run_sql, swap_positions, tamper

from cqrs_cli.write.command_service import CommandService


@pytest.fixture
def journal(store: Path) -> Path:
    """Six events: 1 A created, 2 B created, 3 A updated, 4 B updated, 5 A updated,
    6 C created; with keys, correlation ids and text that is hard to carry exactly."""
    service = CommandService()
    service.create_item("A", "first", idempotency_key="k1", correlation_id="c1")
    service.create_item("B", 'line\nbreak\ttab \x1b[2J \u2028 \U0001f600 "q" \\')
    service.update_item("A", "second")
    service.update_item("B", "caf\u00e9 / cafe\u0301")
    service.update_item("A", "third", correlation_id="c5")
    service.create_item("C")
    return store / "journal.db"


# --- verify ----------------------------------------------------------------------------------


def test_verify_passes_on_a_clean_journal_and_lists_its_checks(
    cli: InProcessCli, journal: Path
) -> None:
    code, out, err = cli("journal", "verify")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"Journal {journal} (id {journal_id(journal)})"
    assert lines[-1] == "Verified 6 events."
    checks = lines[1:-1]
    assert all(line.startswith("  ok  ") for line in checks)
    assert [line[6:] for line in checks] == [
        "SQLite integrity check: ok",
        "schema: markers, tables and append-only triggers present",
        "events: 6, positions strictly increasing up to 6",
        "hash chain: every event linked to the one before it (in the journal or in its "
        "item), and unedited",
        "stream versions: 1, 2, 3 ... in position order, 3 streams",
        "state records: 0, each the fold of its stream's events",
    ]


def test_verify_json(cli: InProcessCli, journal: Path) -> None:
    code, out, err = cli("journal", "verify", "--json")
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    report = json.loads(out)
    assert report["ok"] is True
    assert (report["events"], report["head"], report["streams"]) == (6, 6, 3)
    assert report["journal_id"] == journal_id(journal)
    assert len(report["checks"]) == 6 and all(isinstance(c, str) for c in report["checks"])


def test_verify_an_empty_journal(cli: InProcessCli, store: Path, tmp_path: Path) -> None:
    from cqrs_cli.journal.locator import open_journal

    open_journal(str(store / "journal.db")).close()  # a journal with no events
    code, out, _ = cli("journal", "verify")
    assert code == 0
    assert out.splitlines()[-1] == "Verified 0 events."


def test_verify_without_a_journal_is_exit_7_and_creates_nothing(
    cli: InProcessCli, store: Path
) -> None:
    code, out, err = cli("journal", "verify")
    assert (code, out) == (7, "")
    assert "no journal here" in one_error_line(err)
    assert not (store / "journal.db").exists()


Edit = Callable[[sqlite3.Connection], None]


def rewrite(position: int, column: str, value: object, then_rechain: bool = False) -> Edit:
    def edit(conn: sqlite3.Connection) -> None:
        conn.execute(f"UPDATE events SET {column} = ? WHERE position = ?", (value, position))
        if then_rechain:
            rechain(conn, position)

    return edit


def versions(*changes: tuple[int, int]) -> Edit:
    """Give events new stream versions (moving them out of the way first: versions are
    unique per stream), then repair the hash chain, so that only the check of the
    stream versions can notice."""

    def edit(conn: sqlite3.Connection) -> None:
        for position, _ in changes:
            conn.execute(
                "UPDATE events SET stream_version = stream_version + 1000 WHERE position = ?",
                (position,),
            )
        for position, version in changes:
            conn.execute(
                "UPDATE events SET stream_version = ? WHERE position = ?", (version, position)
            )
        rechain(conn, min(position for position, _ in changes))

    return edit


# Each tampering: the edit, the first bad position verify must name, and words it must say.
TAMPERING: dict[str, tuple[Edit, int, str]] = {
    "edited-data": (rewrite(3, "data", '{"description": "forged"}'), 3, "edited"),
    "edited-stream": (rewrite(3, "stream_id", "D"), 3, "edited"),
    "edited-time": (rewrite(4, "recorded_at", "2000-01-01T00:00:00.000000Z"), 4, "edited"),
    "edited-correlation-id": (rewrite(5, "correlation_id", None), 5, "edited"),
    "edited-hash": (rewrite(3, "hash", "0" * 64), 3, "hash does not match"),
    "edited-prev-hash": (rewrite(3, "prev_hash", "f" * 64), 3, "hash chain broken"),
    "deleted-row": (run_sql("DELETE FROM events WHERE position = 3"), 4, "hash chain broken"),
    "deleted-first-row": (run_sql("DELETE FROM events WHERE position = 1"), 2, "chain broken"),
    "swapped-rows": (swap_positions(3, 4), 3, "hash chain broken"),
    "swapped-first-rows": (swap_positions(1, 2), 1, "hash chain broken"),
    "version-gap": (versions((5, 4)), 5, "stream 'A' jumps to version 4"),
    "version-order": (versions((3, 3), (5, 2)), 3, "version 3 comes before its predecessor"),
    "undecodable-data": (
        rewrite(4, "data", '{"colour": "red"}', then_rechain=True),
        4,
        "undecodable",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_verify_catches_tampering_and_names_the_first_bad_position(
    cli: InProcessCli, journal: Path, name: str
) -> None:
    edit, position, words = TAMPERING[name]
    tamper(journal, edit)
    for argv in (
        ["journal", "verify"],
        ["journal", "verify", "--json"],
        ["-q", "journal", "verify"],
    ):
        code, out, err = cli(*argv)
        line = one_error_line(err)
        assert f"journal verification failed at position {position}: " in line
        assert words in line
        assert code == 7
        if "--json" in argv:
            # A script reading stdout learns it too, with the position.
            report = json.loads(out)
            assert (report["ok"], report["position"]) == (False, position)
            assert words in report["problem"]
        else:
            assert out == ""


def test_quiet_verify_prints_nothing_when_the_journal_is_sound(
    cli: InProcessCli, journal: Path
) -> None:
    assert tuple(cli("-q", "journal", "verify")) == (0, "", "")
    assert tuple(cli("journal", "verify", "-q")) == (0, "", "")


@pytest.mark.parametrize("trigger", ["events_append_only_update", "events_append_only_delete"])
def test_verify_fails_a_journal_whose_trigger_was_dropped(
    cli: InProcessCli, journal: Path, trigger: str
) -> None:
    conn = sqlite3.connect(journal, isolation_level=None)
    conn.execute(f"DROP TRIGGER {trigger}")
    conn.close()
    code, out, err = cli("journal", "verify")
    assert (code, out) == (7, "")
    assert f"{trigger} is missing from the schema" in one_error_line(err)


def test_the_journal_refuses_plain_edits(journal: Path) -> None:
    # What the tampering above has to get around.
    conn = sqlite3.connect(journal, isolation_level=None)
    try:
        for statement in ("UPDATE events SET data = '{}'", "DELETE FROM events"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
    finally:
        conn.close()
    assert len(event_rows(journal)) == 6


# --- export and import -------------------------------------------------------------------------


def export_of(cli: InProcessCli, *global_options: str) -> str:
    code, out, err = cli(*global_options, "journal", "export")
    assert (code, err) == (0, ""), err
    return out


def test_export_import_export_is_byte_identical(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    exported = export_of(cli)
    lines = exported.splitlines()
    assert len(lines) == 8  # header, six events, trailer
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    assert header["format"] == "cqrs-journal-export"
    assert header["journal_id"] == journal_id(journal)
    assert trailer["end"] is True and trailer["events"] == 6
    export_file = tmp_path / "export.ndjson"
    export_file.write_text(exported, encoding="utf-8")
    restored = tmp_path / "restored" / "journal.db"

    code, out, err = cli("--journal", str(restored), "journal", "import", str(export_file))
    assert (code, out) == (0, "")
    assert err == f"Imported 6 events into {restored} (journal id {journal_id(journal)})\n"
    assert export_of(cli, "--journal", str(restored)) == exported
    assert event_rows(restored) == event_rows(journal)
    assert journal_id(restored) == journal_id(journal)
    assert cli("--journal", str(restored), "journal", "verify").code == 0


def test_export_piped_into_import_between_processes(
    cqrs_exe: str, journal: Path, tmp_path: Path
) -> None:
    restored = tmp_path / "piped.db"
    exported = run_cqrs(cqrs_exe, "journal", "export")
    assert exported.returncode == 0
    imported = run_cqrs(
        cqrs_exe, "--journal", str(restored), "journal", "import", "-", stdin=exported.stdout
    )
    assert imported.returncode == 0, imported.stderr
    again = run_cqrs(cqrs_exe, "--journal", str(restored), "journal", "export")
    assert again.stdout == exported.stdout


def test_export_to_a_file(cli: InProcessCli, journal: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "journal.ndjson"
    code, out, err = cli("journal", "export", str(dest))
    assert (code, out) == (0, "")
    assert err == f"Exported journal {journal_id(journal)} to {dest}\n"
    assert dest.read_text(encoding="utf-8") == export_of(cli)
    # An existing file is never overwritten.
    before = sha256_of(dest)
    CommandService().create_item("D")
    code, out, err = cli("journal", "export", str(dest))
    assert (code, out) == (2, "")
    assert "already exists" in one_error_line(err)
    assert sha256_of(dest) == before


def test_import_into_an_existing_journal_is_refused(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    export_file = tmp_path / "export.ndjson"
    export_file.write_text(export_of(cli), encoding="utf-8")
    before = sha256_of(journal)
    code, out, err = cli("journal", "import", str(export_file))  # into the live journal
    assert (code, out) == (2, "")
    assert "already exists" in one_error_line(err)
    assert sha256_of(journal) == before
    assert [p.name for p in journal.parent.iterdir() if ".new-" in p.name] == []


def edited_line(lines: list[str]) -> list[str]:
    assert '"description\\":\\"second\\"' in lines[3]
    lines[3] = lines[3].replace('"description\\":\\"second\\"', '"description\\":\\"forged\\"')
    return lines


# Each corruption of an export: the change, the exit code, the line it must name.
CORRUPTIONS: dict[str, tuple[Callable[[list[str]], list[str]], int, int]] = {
    "edited-line": (edited_line, 7, 4),
    "swapped-lines": (lambda ls: [*ls[:2], ls[3], ls[2], *ls[4:]], 7, 3),
    "removed-line": (lambda ls: ls[:2] + ls[3:], 7, 3),
    "removed-first-event": (lambda ls: ls[:1] + ls[2:], 7, 2),
    "duplicated-line": (lambda ls: [*ls[:3], ls[2], *ls[3:]], 7, 4),
    "no-trailer": (lambda ls: ls[:-1], 7, 8),
    "cut-mid-line": (lambda ls: [*ls[:5], ls[5][:40]], 2, 6),
    "trailer-miscounts": (lambda ls: [*ls[:-1], ls[-1].replace('"events":6', '"events":5')], 7, 8),
    "line-after-trailer": (lambda ls: [*ls, ls[1]], 2, 9),
    "missing-field": (lambda ls: [*ls[:2], ls[2].replace('"correlation_id":null,', ""), *ls[3:]],
                      2, 3),
    "garbage": (lambda ls: ["this is not an export"], 2, 1),
    "not-an-export-header": (lambda ls: ['{"format": "something-else", "version": 1}', *ls[1:]],
                             2, 1),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_tampered_export_is_refused_and_creates_no_journal(
    cli: InProcessCli, journal: Path, tmp_path: Path, name: str
) -> None:
    change, exit_code, line = CORRUPTIONS[name]
    lines = export_of(cli).splitlines()
    export_file = tmp_path / "export.ndjson"
    export_file.write_text("".join(f"{text}\n" for text in change(lines)), encoding="utf-8")
    folder = tmp_path / "restore"
    folder.mkdir()
    target = folder / "journal.db"
    code, out, err = cli("--journal", str(target), "journal", "import", str(export_file))
    assert (code, out) == (exit_code, "")
    assert f"line {line}: " in one_error_line(err)
    assert list(folder.iterdir()) == []  # no journal, no half-made file


def test_an_empty_export_is_refused(cli: InProcessCli, tmp_path: Path) -> None:
    target = tmp_path / "restored.db"
    code, out, err = cli("--journal", str(target), "journal", "import", "-", stdin=b"")
    assert (code, out) == (2, "")
    assert "empty" in one_error_line(err)
    assert not target.exists()


# --- backup ------------------------------------------------------------------------------------


def test_backup_is_a_journal_that_verifies_with_the_same_events(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "backups" / "journal-1.db"
    code, out, err = cli("journal", "backup", str(dest))
    assert (code, out, err) == (0, "", f"Backed up 6 events (head position 6) to {dest}\n")
    assert event_rows(dest) == event_rows(journal)
    assert journal_id(dest) == journal_id(journal)
    assert cli("--journal", str(dest), "journal", "verify").code == 0
    assert cli("--journal", str(dest), "events").out == cli("events").out
    second = tmp_path / "backups" / "journal-2.db"
    code, out, _ = cli("journal", "backup", "--json", str(second))
    assert code == 0
    assert json.loads(out) == {"backup": str(second), "events": 6, "head": 6}


def test_backup_to_an_existing_file_is_refused(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "taken.db"
    dest.write_bytes(b"precious")
    code, out, err = cli("journal", "backup", str(dest))
    assert (code, out) == (2, "")
    assert "already exists" in one_error_line(err)
    assert dest.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("taken.db")] == ["taken.db"]


def test_backup_without_a_journal_is_exit_7(cli: InProcessCli, tmp_path: Path) -> None:
    dest = tmp_path / "backup.db"
    code, _, err = cli("journal", "backup", str(dest))
    assert code == 7
    assert "no journal here" in one_error_line(err)
    assert not dest.exists()


WRITER = """
import os, sys
from cqrs_cli.write.command_service import CommandService

stop = sys.argv[1]
with CommandService() as service:
    n = 0
    while not os.path.exists(stop):
        service.create_item(f"w-{n:06d}", "written during the backups")
        if n % 3 == 2:
            service.update_item(f"w-{n - 1:06d}", "changed")
        n += 1
    service.create_item("last", "after the backups")
"""


def test_backups_under_concurrent_writes_are_consistent_snapshots(
    cli: InProcessCli, journal: Path, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(stop)], stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: len(event_rows(journal)) > 20 or writer.poll() is not None)
        backups = []
        for n in range(5):
            dest = tmp_path / f"backup-{n}.db"
            code, _, err = cli("journal", "backup", str(dest))
            assert code == 0, err
            backups.append(dest)
    finally:
        stop.touch()
        _, writer_err = writer.communicate(timeout=SUBPROCESS_TIMEOUT)
    assert writer.returncode == 0, writer_err
    final = event_rows(journal)
    assert final[-1][2] == "last"
    seen = 0
    for dest in backups:
        code, out, err = cli("--journal", str(dest), "journal", "verify", "--json")
        assert code == 0, err
        rows = event_rows(dest)
        assert json.loads(out)["events"] == len(rows)
        assert rows == final[: len(rows)]  # a prefix: no event half-copied or missing
        assert len(rows) >= seen
        seen = len(rows)
    assert seen < len(final)
