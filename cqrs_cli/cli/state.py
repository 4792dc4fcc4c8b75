"""Global options shared by every command, filled in by whichever parser ran."""

from __future__ import annotations

import os

from ..paths import StorePaths


class CliState:
    __slots__ = ("debug", "home", "journal", "projection", "quiet")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to the defaults: each command line starts from these."""
        self.journal: str | None = None
        self.projection: str | None = None
        self.home: str | None = None
        self.debug = bool(os.environ.get("CQRS_DEBUG"))
        self.quiet = False

    def paths(self) -> StorePaths:
        return StorePaths.resolve(self.home, self.journal, self.projection)


state = CliState()
"""The one instance for this process: main() reads `debug` from it when a command fails."""
