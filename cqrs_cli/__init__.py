"""cqrs: CQRS and event sourcing from the shell, and from Python.

    from cqrs_cli import CommandService, QueryService

The public names are loaded on first use, so that `cqrs` start-up only pays for what a
command needs.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .errors import (
        BusyError,
        ConflictError,
        CqrsError,
        NotFoundError,
        StaleReadError,
        StorageError,
        UsageError,
    )
    from .journal.memory_journal import MemoryJournal
    from .paths import StorePaths
    from .read.models import HistoryEntry, ItemView, Status
    from .read.query_service import QueryService
    from .sync.runner import SyncReport, sync_projection
    from .write.command_service import CommandService
    from .write.results import WriteResult

__all__ = [
    "BusyError",
    "CommandService",
    "ConflictError",
    "CqrsError",
    "HistoryEntry",
    "ItemView",
    "MemoryJournal",
    "NotFoundError",
    "QueryService",
    "StaleReadError",
    "Status",
    "StorageError",
    "StorePaths",
    "SyncReport",
    "UsageError",
    "WriteResult",
    "__version__",
    "sync_projection",
]

_LAZY = {
    "CommandService": ".write.command_service",
    "WriteResult": ".write.results",
    "StorePaths": ".paths",
    "MemoryJournal": ".journal.memory_journal",
    "QueryService": ".read.query_service",
    "ItemView": ".read.models",
    "HistoryEntry": ".read.models",
    "Status": ".read.models",
    "SyncReport": ".sync.runner",
    # Not "sync": that name is the cqrs_cli.sync subpackage, which Python binds on the
    # package as soon as it is imported.
    "sync_projection": ".sync.runner",
    "CqrsError": ".errors",
    "UsageError": ".errors",
    "NotFoundError": ".errors",
    "ConflictError": ".errors",
    "StaleReadError": ".errors",
    "BusyError": ".errors",
    "StorageError": ".errors",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cqrs_cli' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
