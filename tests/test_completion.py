"""Shell completion: each shell gets its own script, item ids complete from the
projection (never to file names), options with fixed values complete their values,
paths are left to the shell, and a request never fails loudly.

Requests are made as each script makes them: the installed `cqrs` run with
`_CQRS_COMPLETE=complete_SHELL` and the command line in that shell's variables. Bash's
script is also driven for real, through a terminal, where bash is installed."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from common import InProcessCli, child_env, installed_cqrs, one_error_line, run_cqrs
from test_startup_imports import imports_of

from cqrs_cli import CommandService
from cqrs_cli.cli.complete_values import MAX_IDS
from cqrs_cli.cli.completion_scripts import SHELLS, script
from cqrs_cli.cli.journal_commands import EVENT_TYPES
from cqrs_cli.domain.codec import SCHEMA_VERSIONS
from cqrs_cli.paths import StorePaths
from cqrs_cli.sync.runner import sync_projection

IDS = ["Apple", "Apricot", "Banana", "my item", "ns:one", "Ünïcode"]


@pytest.fixture
def items(store: Path) -> Path:
    """A synced store of IDS, Banana deleted."""
    with CommandService(store) as service:
        for item_id in IDS:
            service.create_item(item_id, f"about {item_id}")
        service.delete_item("Banana")
    sync_projection(StorePaths.coerce(store))
    return store


def ask(shell: str, env: Mapping[str, str] | None = None, **variables: str) -> list[str]:
    """The answer lines to one completion request of `shell`; it must exit 0 and say
    nothing on stderr."""
    environment = child_env()
    environment.update(env or {})
    environment.update(variables, _CQRS_COMPLETE=f"complete_{shell}")
    result = run_cqrs(installed_cqrs(), env=environment, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def bash(*words: str, line: str | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """Bash's request for the last of `words` (the word being completed), as its
    script sends it (with COMP_LINE, when `line` is given)."""
    extra = {} if line is None else {"COMP_LINE": line, "COMP_POINT": str(len(line))}
    return ask(
        "bash",
        env,
        COMP_WORDS="\n".join(("cqrs", *words)),
        COMP_CWORD=str(len(words)),
        **extra,
    )


def zsh(*words: str, env: Mapping[str, str] | None = None) -> list[str]:
    return ask("zsh", env, _CQRS_COMPLETE_ARGS="\n".join(("cqrs", *words)))


def values(lines: list[str], sep: str = "\t") -> list[str]:
    return [line.split(sep)[1] for line in lines]


# --- The scripts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _cqrs_completion cqrs"),
        ("zsh", "#compdef cqrs"),
        ("fish", "complete --command cqrs --no-files"),
        ("powershell", "Register-ArgumentCompleter -Native -CommandName cqrs"),
        ("pwsh", "Register-ArgumentCompleter -Native -CommandName cqrs"),
    ],
)
def test_show_completion_prints_the_script_of_the_shell_named(
    cli: InProcessCli, shell: str, marker: str
) -> None:
    for argv in (("--show-completion", shell), (f"--show-completion={shell}",)):
        result = cli(*argv)
        assert result.code == 0, result.err
        assert marker in result.out
        assert result.out == script(shell)
    others = [name for name in SHELLS if script(name) != script(shell)]
    assert all(script(name) not in cli("--show-completion", shell).out for name in others)


def test_show_completion_without_a_shell_takes_the_one_it_runs_in(
    cli: InProcessCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shellingham  # type: ignore[import-untyped]

    def undetectable() -> tuple[str, str]:
        raise shellingham.ShellDetectionFailure()

    monkeypatch.setattr(shellingham, "detect_shell", undetectable)
    monkeypatch.setenv("SHELL", "/usr/bin/zsh")
    assert cli("--show-completion").out == script("zsh")
    assert cli("--home", "/tmp", "--show-completion").out == script("zsh")
    monkeypatch.setattr(shellingham, "detect_shell", lambda: ("fish", "/usr/bin/fish"))
    assert cli("--show-completion").out == script("fish")
    monkeypatch.setattr(shellingham, "detect_shell", undetectable)
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    result = cli("--show-completion")
    assert result.code == 2
    assert "cannot tell which shell this is (tcsh)" in one_error_line(result.err)


def test_an_unknown_shell_is_a_usage_error_in_one_line(cli: InProcessCli) -> None:
    result = cli("--show-completion", "csh")
    assert (result.code, result.out) == (2, "")
    line = one_error_line(result.err)
    assert "unknown shell 'csh'" in line and "bash, zsh, fish, powershell" in line


def test_the_bash_script_is_valid_bash() -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    subprocess.run(["bash", "-n"], input=script("bash"), text=True, check=True)


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_the_zsh_and_fish_scripts_parse(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed here")
    subprocess.run([shell, "-n"], input=script(shell), text=True, check=True)


def test_install_completion_writes_the_script_where_the_shell_loads_it(
    cli: InProcessCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("BASH_COMPLETION_USER_DIR", raising=False)
    result = cli("--install-completion", "fish")
    assert (result.code, result.out) == (0, "")
    fish = tmp_path / "config" / "fish" / "completions" / "cqrs.fish"
    assert fish.read_text() == script("fish")
    assert str(fish) in result.err
    result = cli("--install-completion", "bash")
    installed = Path(os.environ["XDG_DATA_HOME"]) / "bash-completion" / "completions" / "cqrs"
    assert installed.read_text() == script("bash")
    assert "bash-completion" in result.err
    result = cli("--install-completion", "powershell")
    assert result.code == 2
    assert "$PROFILE" in one_error_line(result.err)


# --- What is offered -------------------------------------------------------------------------


def test_item_ids_complete_from_the_projection(items: Path) -> None:
    assert bash("item", "get", "Ap") == ["plain,Apple", "plain,Apricot"]
    live = ["Apple", "Apricot", "my item", "ns:one", "Ünïcode"]
    assert values(zsh("item", "get", "")) == live
    assert values(zsh("item", "update", "")) == live
    assert values(zsh("item", "delete", "B")) == []  # deleted: nothing to delete
    # History and the events of a stream: deleted items have them too.
    assert values(zsh("item", "history", "B")) == ["Banana"]
    assert values(zsh("events", "--stream", "B")) == ["Banana"]
    assert values(zsh("item", "list", "--after", "A")) == ["Apple", "Apricot"]
    assert values(zsh("item", "get", "Ü")) == ["Ünïcode"]
    # A new item's id is new: neither existing ids nor file names.
    assert zsh("item", "create", "") == []
    assert bash("item", "create", "") == []


def test_an_id_that_matches_nothing_completes_to_nothing_not_to_files(items: Path) -> None:
    """An empty answer: each script then offers nothing (the `file` kind alone lets the
    shell complete file names; bash's, driven for real, is checked below)."""
    assert bash("item", "get", "Apf") == []
    assert zsh("item", "get", "Apf") == []
    assert ask("fish", _CQRS_COMPLETE_ARGS="cqrs\nitem\nget", _CQRS_COMPLETE_WORD="Apf") == []


def test_the_store_named_on_the_command_line_is_the_one_completed(
    items: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    with CommandService(other) as service:
        service.create_item("Zebra")
    sync_projection(StorePaths.coerce(other))
    assert values(zsh("--home", str(other), "item", "get", "")) == ["Zebra"]
    files = ("--journal", str(other / "journal.db"), "--projection", str(other / "projection.db"))
    assert values(zsh(*files, "item", "get", "")) == ["Zebra"]
    # Another journal's projection answers no read, nor a completion.
    assert zsh("--projection", str(other / "projection.db"), "item", "get", "") == []


def test_at_most_max_ids_are_offered(store: Path) -> None:
    lines = "".join(f'{{"op": "create", "id": "id-{n:04d}"}}\n' for n in range(MAX_IDS + 50))
    assert run_cqrs(installed_cqrs(), "apply", stdin=lines.encode()).returncode == 0
    sync_projection(StorePaths.coerce(store))
    offered = values(zsh("item", "get", "id-"))
    assert offered == [f"id-{n:04d}" for n in range(MAX_IDS)]


def test_options_with_fixed_values_complete_them_with_their_meaning(items: Path) -> None:
    answer = zsh("events", "--type", "")
    assert values(answer) == list(EVENT_TYPES)
    assert all(line.split("\t")[2] for line in answer)  # each with its help
    assert values(zsh("events", "--type", "ItemU")) == ["ItemUpdated"]
    assert bash("events", "--type=ItemD", line="cqrs events --type=ItemD") == [
        "plain,--type=ItemDeleted"
    ]
    assert values(zsh("--show-completion", "")) == list(SHELLS)
    assert set(EVENT_TYPES) == set(SCHEMA_VERSIONS)  # the same list as --type accepts


def test_paths_are_left_to_the_shell_and_other_values_to_nobody(items: Path) -> None:
    assert bash("apply", "") == ["file,"]
    assert bash("--journal", "/tm") == ["file,"]
    assert bash("--home", "") == ["dir,"]
    assert zsh("journal", "backup", "") == ["file\t\t"]
    assert zsh("item", "list", "--limit", "") == []  # a number: nothing to offer
    assert zsh("item", "update", "Apple", "") == []  # a description: free text


def test_commands_and_options_complete(items: Path) -> None:
    assert values(zsh("it")) == ["item"]
    assert values(zsh("item", "hi")) == ["history"]
    assert "--include-deleted" in values(zsh("item", "list", "--"))
    assert bash("item", "li") == ["plain,list"]


def test_bash_words_are_quoted_and_cut_where_bash_replaces(items: Path) -> None:
    assert bash("item", "get", "my") == ["plain,my\\ item"]
    assert bash("item", "get", '"my', line='cqrs item get "my') == ['plain,"my item']
    # COMP_WORDBREAKS splits `ns:o` in three words; bash replaces only the last.
    assert bash("item", "get", "ns", ":", "o", line="cqrs item get ns:o") == ["plain,one"]
    assert bash("item", "get", "ns", ":", line="cqrs item get ns:") == ["plain,one"]


def test_powershell_and_fish_requests(items: Path) -> None:
    assert ask(
        "powershell", _CQRS_COMPLETE_ARGS="cqrs item get Apr", _CQRS_COMPLETE_WORD="Apr"
    ) == ["plain\tApricot\t"]
    assert ask("pwsh", _CQRS_COMPLETE_ARGS="cqrs events --type ") == [
        f"plain\t{name}\t{help}" for name, help in EVENT_TYPES.items()
    ]
    assert ask("fish", _CQRS_COMPLETE_ARGS="cqrs\nitem\nget", _CQRS_COMPLETE_WORD="Apr") == [
        "plain\tApricot"
    ]
    assert ask("fish", _CQRS_COMPLETE_ARGS="cqrs\nevents\n--type", _CQRS_COMPLETE_WORD="ItemC") == [
        f"plain\tItemCreated\t{EVENT_TYPES['ItemCreated']}"
    ]


def test_a_request_never_fails_loudly(store: Path, tmp_path: Path) -> None:
    assert zsh("item", "get", "") == []  # nothing written yet
    with CommandService(store) as service:
        service.create_item("Apple")
    assert zsh("item", "get", "") == []  # no projection yet
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database")
    assert zsh("--projection", str(garbage), "item", "get", "") == []
    assert zsh("--home", str(tmp_path / "nowhere"), "item", "get", "") == []
    assert zsh("item", "get", "\udcff") == []  # not text a terminal can send
    # A request for a shell cqrs does not know is a mistake in a hand-made script.
    result = run_cqrs(installed_cqrs(), env=child_env(_CQRS_COMPLETE="complete_tcsh"), text=True)
    assert result.returncode == 1
    assert "unknown completion request" in one_error_line(result.stderr)


def test_a_request_runs_no_command_whatever_argv_says(store: Path) -> None:
    env = child_env(_CQRS_COMPLETE="complete_zsh", _CQRS_COMPLETE_ARGS="cqrs\nit")
    result = run_cqrs(installed_cqrs(), "item", "create", "Sneaky", env=env, text=True)
    assert result.stdout.startswith("plain\titem\t")
    assert not (store / "journal.db").exists()


def test_hot_commands_load_none_of_completion() -> None:
    result, modules = imports_of(installed_cqrs(), "item", "list")
    assert result.returncode in (0, 5), result.stderr
    assert not {m for m in modules if "complet" in m}


# --- Bash itself -----------------------------------------------------------------------------


def type_in_bash(keys: str, env: Mapping[str, str], cwd: Path) -> str:
    """The line bash's readline shows after typing `keys` (Tab included) with the cqrs
    script sourced, in an interactive bash on a terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive bash, nothing of the user's configuration
        os.chdir(cwd)
        os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], dict(env))
    seen = b""

    def read(until: bytes, timeout: float = 20.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while until not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    return

    try:
        os.write(fd, b"PS1='READY> '; bind 'set bell-style none'\n")
        read(b"READY> ")
        seen = b""
        os.write(fd, b"source <(cqrs --show-completion bash); echo SOURCED\n")
        read(b"SOURCED\r\nREADY> ")  # the next prompt: readline reads keys again
        seen = b""
        # Type, then a marker that bash prints once the completion is done.
        os.write(fd, keys.encode() + b"\x05 #END\n")
        read(b"#END")
        time.sleep(0.1)
    finally:
        os.write(fd, b"exit\n")
        os.close(fd)
        os.waitpid(pid, 0)
    text = seen.decode(errors="replace").split(" #END")[0]
    line = ""
    for ch in text:  # what a terminal would show: backspaces erase, bells ring
        if ch == "\b":
            line = line[:-1]
        elif ch == "\r":
            line = ""
        elif ch != "\x07":
            line += ch
    return line.split("READY> ")[-1].rstrip()


@pytest.fixture
def bash_env(items: Path) -> dict[str, str]:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    version = subprocess.run(
        ["bash", "-c", "echo ${BASH_VERSINFO[0]}${BASH_VERSINFO[1]}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if int(version) < 44:
        pytest.skip("the script needs bash 4.4 or later")
    env = child_env(TERM="dumb")
    env["PATH"] = f"{Path(installed_cqrs()).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_bash_completes_ids_commands_and_files_for_real(
    bash_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "Apfel.txt").write_text("")
    (tmp_path / "batch.ndjson").write_text("")
    assert type_in_bash("cqrs item get Apr\t", bash_env, tmp_path) == "cqrs item get Apricot"
    assert type_in_bash("cqrs item get my\t", bash_env, tmp_path) == "cqrs item get my\\ item"
    assert type_in_bash("cqrs item get ns:\t", bash_env, tmp_path) == "cqrs item get ns:one"
    assert type_in_bash("cqrs ev\t--type ItemD\t", bash_env, tmp_path) == (
        "cqrs events --type ItemDeleted"
    )
    # No id starts with Apf: bash must not offer the file Apfel.txt instead.
    assert type_in_bash("cqrs item get Apf\t", bash_env, tmp_path) == "cqrs item get Apf"
    # Where a file goes, the shell completes file names.
    assert type_in_bash("cqrs apply bat\t", bash_env, tmp_path) == "cqrs apply batch.ndjson"


# --- zsh and fish themselves -----------------------------------------------------------------

_ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|\(B)")

SETUP = {
    "zsh": (
        ["zsh", "-f", "-i"],
        [
            b"PS1='READY> '; autoload -Uz compinit; compinit -u",
            b"source <(cqrs --show-completion zsh)",
        ],
    ),
    "fish": (
        ["fish", "--no-config", "-i"],
        [b"function fish_prompt; echo -n 'READY> '; end", b"cqrs --show-completion fish | source"],
    ),
}


def screen_after_typing(shell: str, keys: str, env: Mapping[str, str], cwd: Path) -> str:
    """What `shell`, on a terminal with the cqrs script loaded, writes after `keys` are
    typed (Tab included), escape sequences removed: the edited line, and any list of
    candidates it shows."""
    argv, setup = SETUP[shell]
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(cwd)
        os.execvpe(argv[0], argv, dict(env))
    seen = b""

    def read_until_idle(idle: float = 1.0, timeout: float = 20.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < idle:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    return
                quiet_since = time.monotonic()

    try:
        read_until_idle()
        for line in setup:
            os.write(fd, line + b"; echo SET-UP\n")
            read_until_idle()
        seen = b""
        os.write(fd, keys.encode())
        read_until_idle()
    finally:
        os.write(fd, b"\x03")
        os.write(fd, b"exit\n")
        os.close(fd)
        os.waitpid(pid, 0)
    return _ANSI.sub("", seen.decode(errors="replace"))


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_complete_ids_values_and_files_for_real(
    shell: str, items: Path, tmp_path: Path
) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed here")
    env = child_env(TERM="xterm")
    env["PATH"] = f"{Path(installed_cqrs()).parent}{os.pathsep}{env.get('PATH', '')}"
    (tmp_path / "Apfel.txt").write_text("")
    (tmp_path / "batch.ndjson").write_text("")

    def shown(keys: str) -> str:
        return screen_after_typing(shell, keys, env, tmp_path)

    assert "cqrs item get Apricot" in shown("cqrs item get Apr\t")
    assert "my\\ item" in shown("cqrs item get my\t")
    assert "ns:one" in shown("cqrs item get ns:\t")
    assert "ItemDeleted" in shown("cqrs events --type ItemD\t")
    assert "Apfel" not in shown("cqrs item get Apf\t")  # no id: no file either
    assert "batch.ndjson" in shown("cqrs apply bat\t")
