"""docs/cqrs-sync.service: the unit the README gives for running `cqrs sync --follow` as
a service. Its ExecStart line, run as systemd would run it (the Environment= lines set,
%h being the user's home), follows the journal and stops cleanly on the unit's
KillSignal; and systemd itself, where it can, accepts the file."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from catchup_helpers import checkpoint
from common import SUBPROCESS_TIMEOUT, child_env, installed_cqrs, run_cqrs, wait_until

UNIT = Path(__file__).parent.parent / "docs" / "cqrs-sync.service"


def unit_settings() -> dict[str, list[str]]:
    """`Section.Key` -> every value it is given, in order (systemd allows repeats)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a setting: {raw!r}"
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def expand(value: str, home: Path) -> str:
    assert "%" not in value.replace("%h", ""), f"only %h is expanded here: {value!r}"
    return value.replace("%h", str(home))


def test_the_units_command_line_follows_the_journal_and_stops_on_its_kill_signal(
    tmp_path: Path,
) -> None:
    settings = unit_settings()
    assert settings["Service.Type"] == ["simple"]
    assert settings["Install.WantedBy"] == ["default.target"]
    user_home = tmp_path / "user"
    (user_home / ".local" / "bin").mkdir(parents=True)
    (user_home / ".local" / "bin" / "cqrs").symlink_to(installed_cqrs())
    env = child_env(HOME=str(user_home))
    env.pop("CQRS_HOME")
    for assignment in settings.get("Service.Environment", []):
        for pair in shlex.split(assignment):
            name, _, value = pair.partition("=")
            env[name] = expand(value, user_home)
    (exec_start,) = settings["Service.ExecStart"]
    argv = shlex.split(expand(exec_start, user_home))
    assert os.path.isabs(argv[0]) and os.access(argv[0], os.X_OK)
    home = Path(env["CQRS_HOME"])
    assert home == user_home / ".local" / "share" / "cqrs"

    follower = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        writes = {**env, "CQRS_CATCHUP": "0"}  # only the follower syncs here
        for n in range(3):
            assert run_cqrs(installed_cqrs(), "item", "create", f"i{n}", env=writes).returncode == 0
        assert wait_until(lambda: checkpoint(home / "projection.db") == 3, 10.0)
        assert follower.poll() is None  # still following
        kill = settings.get("Service.KillSignal", ["SIGTERM"])[0]
        follower.send_signal(getattr(signal, kill))
        out, err = follower.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert b"Synced" in out
    read = run_cqrs(installed_cqrs(), "item", "list", env=env, text=True)
    assert (read.returncode, read.stdout, read.stderr) == (0, "i0\ni1\ni2\n", "")


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # Verified as a system unit (a user manager needs a session), with %h made concrete
    # so that the executable check has a file to find.
    user_home = tmp_path / "user"
    (user_home / ".local" / "bin").mkdir(parents=True)
    (user_home / ".local" / "bin" / "cqrs").symlink_to(installed_cqrs())
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("%h", str(user_home)))
    result = subprocess.run(
        [analyze, "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    if "Failed to initialize manager" in result.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip()}")
    assert (result.returncode, result.stderr) == (0, "")
