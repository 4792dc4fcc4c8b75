"""Answering a shell's completion request: `cqrs` run with `_CQRS_COMPLETE=complete_SHELL`.

main.run() sees that variable before anything else (no fast path, no command runs)
and calls respond(). The command line comes in the variables the shell's script
(completion_scripts.py) sets; typer's command tree resolves which command, option or
argument is being completed, and that parameter's type offers the candidates
(complete_values.py): item ids from the projection, fixed choices, paths for the shell
to complete, or nothing. Each candidate goes back as one line the script reads:

    bash        KIND,WORD        WORD quoted for bash and cut where bash's current word
                                 starts (COMP_WORDBREAKS splits `ns:id` in two)
    zsh         KIND<tab>VALUE<tab>HELP
    fish        KIND<tab>VALUE[<tab>HELP]
    powershell  KIND<tab>VALUE<tab>HELP

A request never fails loudly: whatever goes wrong, the answer is empty and the exit
code 0 (an error message would land in the middle of the user's command line).
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from typer._click.shell_completion import CompletionItem, ShellComplete, split_arg_string

from .completion_scripts import COMPLETE_VAR, PROG, SHELLS, script


def _unquote(raw: str) -> str:
    """A word as the shell will pass it: quotes and backslashes removed (an unclosed
    quote is taken as closed at the end)."""
    return "".join(split_arg_string(raw)) if raw else ""


def _split_line(text: str) -> tuple[list[str], str]:
    """The words of a command line as typed (quotes kept): the complete ones, and the
    one the cursor is in ("" after a separating space)."""
    words: list[str] = []
    current = ""
    quote = ""
    escaped = False
    for ch in text:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\" and quote != "'":
            current += ch
            escaped = True
        elif quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            current += ch
            quote = ch
        elif ch.isspace():
            if current:
                words.append(current)
            current = ""
        else:
            current += ch
    return words, current


_BASH_PLAIN = re.compile(r"[\w@%+=:,./-]")


def _bash_quoted(value: str, opening: str) -> str | None:
    """`value` as bash must read it in a word that starts with `opening` (a quote
    character, or "" for an unquoted word); None if it cannot be written so."""
    if opening == "'":
        return None if "'" in value else "'" + value
    if opening == '"':
        return '"' + re.sub(r'(["\\$`])', r"\\\1", value)
    return "".join(ch if _BASH_PLAIN.fullmatch(ch) else "\\" + ch for ch in value)


def _one_line(text: str | None) -> str:
    """A help text fit for one field of one line (typer's help escapes `[`)."""
    return " ".join((text or "").replace("\\[", "[").split())


class Completer(ShellComplete):
    """One shell's side of the exchange: where its script put the command line, and how
    it wants the candidates back."""

    name = "cqrs"
    source_template = ""

    def __init__(self, cli: Any, shell: str) -> None:
        super().__init__(cli, {}, PROG, COMPLETE_VAR)
        self.shell = "powershell" if shell == "pwsh" else shell
        self._typed = ""  # bash: the shell word being completed, as typed
        self._replaced = ""  # bash: the part of it that bash will replace

    def source_vars(self) -> dict[str, Any]:
        return {}

    def source(self) -> str:
        return script(self.shell)

    def get_completion_args(self) -> tuple[list[str], str]:
        env = os.environ
        if self.shell == "bash":
            return self._bash_args()
        if self.shell == "zsh":
            # Unquoted by zsh ((Q)), one a line, the last the word being completed.
            words = env.get("_CQRS_COMPLETE_ARGS", "").split("\n")
            return words[1:-1], words[-1] if len(words) > 1 else ""
        word = env.get("_CQRS_COMPLETE_WORD", "")
        if self.shell == "fish":
            # The words before the cursor, unescaped by fish (commandline -o), one a line.
            return env.get("_CQRS_COMPLETE_ARGS", "").split("\n")[1:], _unquote(word)
        # PowerShell: the line up to the cursor; the word being completed, as typed.
        words = split_arg_string(env.get("_CQRS_COMPLETE_ARGS", ""))
        if word and words:
            words = words[:-1]
        return words[1:], _unquote(word)

    def _bash_args(self) -> tuple[list[str], str]:
        env = os.environ
        words = env.get("COMP_WORDS", "").split("\n")
        try:
            cword = int(env.get("COMP_CWORD", ""))
        except ValueError:
            cword = len(words) - 1
        self._replaced = words[cword] if 0 <= cword < len(words) else ""
        if self._replaced and all(ch in ":=" for ch in self._replaced):
            # The cursor right after a word break: bash lists the break character as
            # the current word, but readline replaces only what follows it (nothing).
            self._replaced = ""
        line = env.get("COMP_LINE")
        if line is None:  # called the way typer's script did: the words alone
            self._typed = self._replaced
            return [_unquote(word) for word in words[1:cword]], _unquote(self._replaced)
        try:
            point = int(env.get("COMP_POINT", ""))
        except ValueError:
            point = len(line)
        typed, self._typed = _split_line(line[:point])
        return [_unquote(word) for word in typed[1:]], _unquote(self._typed)

    def format_completion(self, item: CompletionItem) -> str:
        value = str(item.value)
        if self.shell == "bash":
            if item.type != "plain":
                return f"{item.type},"
            typed = self._typed
            # `--option=VALUE`: the candidate is the value; the shell word is all of it.
            head = typed[: typed.index("=") + 1] if typed[:1] == "-" and "=" in typed else ""
            opening = typed[len(head) : len(head) + 1]
            quoted = _bash_quoted(value, opening if opening in ("'", '"') else "")
            # Bash replaces only its current word, which starts after the last
            # COMP_WORDBREAKS character (`:` or `=`) of the word as typed.
            cut = len(typed) - len(self._replaced)
            if quoted is None or cut < 0 or not (head + quoted).startswith(typed[:cut]):
                return ""
            return f"plain,{(head + quoted)[cut:]}"
        help = _one_line(item.help)
        if self.shell == "fish":
            return f"{item.type}\t{value}\t{help}" if help else f"{item.type}\t{value}"
        return f"{item.type}\t{value}\t{help}"

    def complete(self) -> str:
        args, incomplete = self.get_completion_args()
        lines = []
        for item in self.get_completions(args, incomplete):
            value = str(item.value)
            if item.type == "plain" and ("\n" in value or "\t" in value or not value):
                continue  # a line-based answer cannot carry it
            line = self.format_completion(item)
            if line:
                lines.append(line)
        return "\n".join(lines)


def respond(instruction: str) -> int:
    """Answer `_CQRS_COMPLETE=<instruction>` (`complete_SHELL`, or `source_SHELL` for
    the script) on stdout; 0, whatever happens, but 1 for an instruction it does not
    know (so that a typo in a hand-written script shows)."""
    action, _, shell = instruction.partition("_")
    if action not in ("complete", "source") or shell not in SHELLS:
        sys.stderr.write(f"cqrs: error: unknown completion request {instruction!r}\n")
        return 1
    try:
        if action == "source":
            answer = script(shell)
        else:
            from typer.main import get_command

            from .app import app

            answer = Completer(get_command(app), shell).complete()
    except Exception:
        from .state import state

        if state.debug:
            raise
        answer = ""
    if answer:
        sys.stdout.write(answer if answer.endswith("\n") else answer + "\n")
    return 0
