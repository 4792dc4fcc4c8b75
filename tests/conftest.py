"""Shared fixtures. Every test runs with its own home folder: none touches the real one."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from common import InProcessCli, installed_cqrs


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CQRS_HOME, HOME and XDG_DATA_HOME point into the test's own folder."""
    home = tmp_path / "cqrs-home"
    monkeypatch.setenv("CQRS_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in ("CQRS_JOURNAL", "CQRS_PROJECTION", "CQRS_DEBUG", "CQRS_BUSY_TIMEOUT", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    # The catch-up after writes is off for the whole suite, child processes included:
    # most tests check what a read shows before a sync. Its own tests turn it on
    # (the `catch_up` fixture) and reap what it started.
    monkeypatch.setenv("CQRS_CATCHUP", "0")
    yield home


@pytest.fixture
def catch_up(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The catch-up after writes on, as for a user; afterwards the catch-up processes
    that in-process `cqrs` commands started are reaped and this process's catch-up
    threads have ended."""
    from cqrs_cli.sync import session, trigger

    monkeypatch.setenv("CQRS_CATCHUP", "1")
    yield
    trigger.reap()
    session.wait_for_catch_ups(30.0)


@pytest.fixture
def cqrs_exe() -> str:
    """The installed `cqrs` console script of this environment."""
    return installed_cqrs()


@pytest.fixture
def store(isolated_home: Path) -> Path:
    """The test's store folder (CQRS_HOME); nothing is created in it yet."""
    return isolated_home


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcessCli:
    """`cqrs ARGV...` in this process: cli(*argv, stdin=None) -> Output(code, out, err)."""
    return InProcessCli(capsys, monkeypatch)


@pytest.fixture
def fresh_cli_state() -> Iterator[None]:
    """The process-wide CLI state (global options) at its defaults before and after the
    test, as in a new process."""
    from cqrs_cli.cli.state import state

    state.reset()
    yield
    state.reset()
