"""Where the journal and the projection live.

Each file can be named on its own (--journal / CQRS_JOURNAL, --projection /
CQRS_PROJECTION); otherwise both sit in the home folder: CQRS_HOME, else
$XDG_DATA_HOME/cqrs, else ~/.local/share/cqrs.
"""

from __future__ import annotations

import os

from .errors import UsageError
from .record import Record, set_field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

JOURNAL_FILE = "journal.db"
PROJECTION_FILE = "projection.db"


def default_home(environ: Mapping[str, str]) -> str:
    home = environ.get("CQRS_HOME")
    if home:
        return os.path.expanduser(home)
    data = environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "cqrs")


class StorePaths(Record):
    """The two files of one store: the journal (source of truth) and its projection."""

    __slots__ = ("journal", "projection")
    journal: str
    projection: str

    def __init__(self, journal: str, projection: str) -> None:
        if os.path.abspath(journal) == os.path.abspath(projection):
            from .journal.redaction import redacted

            raise UsageError(
                f"the journal and the projection must be different files: {redacted(journal)}"
            )
        set_field(self, "journal", journal)
        set_field(self, "projection", projection)

    @classmethod
    def resolve(
        cls,
        home: str | None = None,
        journal: str | None = None,
        projection: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> StorePaths:
        env = os.environ if environ is None else environ
        base = os.path.expanduser(home) if home else default_home(env)
        return cls(
            journal or env.get("CQRS_JOURNAL") or os.path.join(base, JOURNAL_FILE),
            projection or env.get("CQRS_PROJECTION") or os.path.join(base, PROJECTION_FILE),
        )

    @classmethod
    def coerce(cls, store: StorePaths | str | os.PathLike[str] | None) -> StorePaths:
        """A StorePaths from what a Python caller passed: paths, a home folder, or None
        for the default location."""
        if store is None:
            return cls.resolve()
        if isinstance(store, StorePaths):
            return store
        return cls.resolve(home=os.fspath(store))
