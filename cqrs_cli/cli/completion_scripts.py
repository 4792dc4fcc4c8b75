"""The completion script of each shell, and `cqrs --show-completion|--install-completion
[SHELL]`.

Each script is written for its shell (typer's own printed the bash script for
`--show-completion zsh`, and fell back to file names whenever a value had no
candidates). Every script calls `cqrs` with `_CQRS_COMPLETE=complete_SHELL` and the
command line in variables of that shell's kind (completion.py reads them), and reads
back one line per candidate, `KIND<sep>VALUE[<tab>HELP]`: KIND `plain` is a value to
offer, `file` or `dir` asks the shell to complete a path itself. No candidate means
nothing to offer: no script falls back to file names then (PowerShell excepted, which
completes paths itself when a completer returns nothing and the word is empty).
"""

from __future__ import annotations

import os

from ..errors import UsageError

SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
SHELL_HELP = {
    "bash": "GNU bash 4.4 or later",
    "zsh": "Z shell",
    "fish": "the friendly interactive shell",
    "powershell": "Windows PowerShell",
    "pwsh": "PowerShell 7 or later",
}
COMPLETE_VAR = "_CQRS_COMPLETE"
PROG = "cqrs"

_BASH = r"""# cqrs completion for bash (4.4 or later): source this file, or put it in
# ${XDG_DATA_HOME:-~/.local/share}/bash-completion/completions/cqrs
_cqrs_completion() {
    local IFS=$'\n'
    local reply line
    COMPREPLY=()
    # The words joined by newlines (IFS), as typed; the line up to the cursor too,
    # for words that COMP_WORDBREAKS split (an id with a colon).
    reply=$(env _CQRS_COMPLETE=complete_bash COMP_WORDS="${COMP_WORDS[*]}" \
        COMP_CWORD="$COMP_CWORD" COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" \
        "$1" 2>/dev/null) || return 0
    while IFS= read -r line; do
        case ${line%%,*} in
            file) COMPREPLY=(); compopt -o default; return 0 ;;
            dir) COMPREPLY=(); compopt -o dirnames; return 0 ;;
            plain) COMPREPLY+=("${line#*,}") ;;
        esac
    done <<< "$reply"
    return 0
}
complete -o nosort -F _cqrs_completion cqrs
"""

_ZSH = r"""#compdef cqrs
# cqrs completion for zsh: put it in a folder of $fpath as _cqrs (before compinit
# runs), or source it after compinit.
_cqrs_completion() {
    local -a plain described
    local reply line kind value help
    reply=$(env _CQRS_COMPLETE=complete_zsh \
        _CQRS_COMPLETE_ARGS="${(pj:\n:)${(@Q)words[1,CURRENT]}}" cqrs 2>/dev/null) || return 1
    for line in "${(@f)reply}"; do
        kind=${line%%$'\t'*}
        line=${line#*$'\t'}
        value=${line%%$'\t'*}
        help=${line#*$'\t'}
        case $kind in
            file) _files; return ;;
            dir) _files -/; return ;;
            plain)
                if [[ -n $help ]]; then
                    described+=("${value//:/\\:}:${help}")
                else
                    plain+=("$value")
                fi ;;
        esac
    done
    (( ${#described} )) && _describe -V values described
    (( ${#plain} )) && compadd -V unsorted -a plain
    return 0
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _cqrs_completion "$@"
else
    compdef _cqrs_completion cqrs
fi
"""

_FISH = r"""# cqrs completion for fish: put it in ~/.config/fish/completions/cqrs.fish
function __cqrs_complete
    set -l reply (env _CQRS_COMPLETE=complete_fish \
        _CQRS_COMPLETE_ARGS=(string join \n -- (commandline -opc) | string collect) \
        _CQRS_COMPLETE_WORD=(commandline -ct | string collect) cqrs 2>/dev/null)
    for line in $reply
        set -l parts (string split -m 1 \t -- $line)
        switch $parts[1]
            case file
                __fish_complete_path (commandline -ct)
            case dir
                __fish_complete_directories (commandline -ct)
            case plain
                printf '%s\n' $parts[2]
        end
    end
end
complete --command cqrs --no-files --arguments '(__cqrs_complete)'
"""

_POWERSHELL = r"""# cqrs completion for PowerShell: add this to $PROFILE, or in it:
#   cqrs --show-completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName cqrs -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $text = $commandAst.Extent.Text
    $upTo = $cursorPosition - $commandAst.Extent.StartOffset
    $upTo = [Math]::Min([Math]::Max($upTo, 0), $text.Length)
    $Env:_CQRS_COMPLETE = "complete_powershell"
    $Env:_CQRS_COMPLETE_ARGS = $text.Substring(0, $upTo)
    $Env:_CQRS_COMPLETE_WORD = $wordToComplete
    try { $reply = @(cqrs 2>$null) } finally {
        Remove-Item Env:_CQRS_COMPLETE, Env:_CQRS_COMPLETE_ARGS, Env:_CQRS_COMPLETE_WORD `
            -ErrorAction SilentlyContinue
    }
    $offered = 0
    foreach ($line in $reply) {
        $kind, $value, $help = $line -split "`t", 3
        if ($kind -ne 'plain') { return }  # a path: PowerShell completes it itself
        if (-not $help) { $help = $value }
        $quoted = $value
        if ($value -match '[\s''"`$();,{}@#|&<>]') {
            $quoted = "'" + $value.Replace("'", "''") + "'"
        }
        $offered++
        [System.Management.Automation.CompletionResult]::new(
            $quoted, $value, 'ParameterValue', $help)
    }
    if ($offered -eq 0 -and $wordToComplete) {
        # Nothing to offer: keep the word, rather than let file names stand in for it.
        [System.Management.Automation.CompletionResult]::new(
            $wordToComplete, $wordToComplete, 'ParameterValue', $wordToComplete)
    }
}
"""

_SCRIPTS = {
    "bash": _BASH,
    "zsh": _ZSH,
    "fish": _FISH,
    "powershell": _POWERSHELL,
    "pwsh": _POWERSHELL,
}


def script(shell: str) -> str:
    """The completion script of `shell` (one of SHELLS)."""
    return _SCRIPTS[shell]


def detect_shell() -> str:
    """The shell this command runs in (its parent process, else $SHELL), if supported;
    else a usage error asking for it."""
    name = ""
    try:
        import shellingham  # type: ignore[import-untyped]  # typer's, for the same job

        name = shellingham.detect_shell()[0]
    except Exception:  # not installed, or not found: $SHELL is the user's login shell
        name = os.path.basename(os.environ.get("SHELL", ""))
    name = name.lower().removesuffix(".exe")
    if name not in SHELLS:
        raise UsageError(
            f"cannot tell which shell this is{f' ({name})' if name else ''}: "
            f"give one of {', '.join(SHELLS)}, as in cqrs --show-completion bash"
        )
    return name


def _shell(given: str | None) -> str:
    if given is None or given == "":
        return detect_shell()
    if given not in SHELLS:
        from ..text import printable

        raise UsageError(f"unknown shell {printable(given)!r}: give one of {', '.join(SHELLS)}")
    return given


def show(given: str | None) -> str:
    """`--show-completion [SHELL]`: the script, for stdout."""
    return script(_shell(given))


def _data_home() -> str:
    return os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )


def install(given: str | None) -> str:
    """`--install-completion [SHELL]`: write the script where the shell finds it; what
    was done and what is left to do, as a message for stderr. Edits no start-up file."""
    shell = _shell(given)
    home = os.path.expanduser("~")
    if shell == "bash":
        folder = os.environ.get("BASH_COMPLETION_USER_DIR") or os.path.join(
            _data_home(), "bash-completion"
        )
        target = os.path.join(folder, "completions", PROG)
        after = (
            "bash-completion loads it in new shells; without bash-completion, add "
            f"`source {target}` to ~/.bashrc"
        )
    elif shell == "zsh":
        target = os.path.join(home, ".zfunc", f"_{PROG}")
        after = "zsh loads it once ~/.zshrc has `fpath+=~/.zfunc` before `compinit`"
    elif shell == "fish":
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
        target = os.path.join(config, "fish", "completions", f"{PROG}.fish")
        after = "fish loads it in new shells"
    else:
        raise UsageError(
            "PowerShell keeps completions in its profile: add the line "
            f"`{PROG} --show-completion {shell} | Out-String | Invoke-Expression` to $PROFILE"
        )
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(script(shell))
    except OSError as exc:
        from ..errors import StorageError

        raise StorageError(
            f"{target}: cannot write the completion script: {exc.strerror}"
        ) from None
    return f"{shell} completion installed in {target}: {after}"


def completion_option(argv: list[str]) -> tuple[str, str | None] | None:
    """(`show` or `install`, the SHELL given or None) if argv asks for a completion
    script among the global options before the command; else None. typer cannot parse
    an option whose value may be left out, so this is read before typer runs."""
    from .fast import GLOBAL_FLAGS, GLOBAL_VALUES

    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, has_value, value = argv[i].partition("=")
        if name in ("--show-completion", "--install-completion"):
            action = "show" if name == "--show-completion" else "install"
            if has_value:
                return action, value
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is not None and not following.startswith("-"):
                return action, following
            return action, None
        if name in GLOBAL_VALUES and not has_value:
            i += 2
        elif name in GLOBAL_VALUES or name in GLOBAL_FLAGS:
            i += 1
        else:
            return None
    return None
