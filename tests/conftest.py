"""Shared fixtures. Every test runs with its own home folder: none touches the real one."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CQRS_HOME, HOME and XDG_DATA_HOME point into the test's own folder."""
    home = tmp_path / "cqrs-home"
    monkeypatch.setenv("CQRS_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in ("CQRS_JOURNAL", "CQRS_PROJECTION", "CQRS_DEBUG", "CQRS_BUSY_TIMEOUT", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    yield home


@pytest.fixture
def cqrs_exe() -> str:
    """The installed `cqrs` console script of this environment."""
    exe = Path(sys.executable).parent / "cqrs"
    assert exe.exists(), f"cqrs is not installed in {exe.parent}; run `make test`"
    return str(exe)


@pytest.fixture
def store(isolated_home: Path) -> Path:
    return isolated_home


def env_with(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
