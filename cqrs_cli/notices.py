"""Messages for people that the core has to give while it works (a write waiting for a
long batch, say). The core never prints: it calls `notice`, and whoever runs it decides
where that goes. The CLI sends them to stderr (silenced by -q); a Python program gets
none unless it sets a handler."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_handler: Callable[[str], None] | None = None


def set_handler(handler: Callable[[str], None] | None) -> None:
    """Where notices go from now on (None: nowhere)."""
    global _handler
    _handler = handler


def notice(message: str) -> None:
    if _handler is not None:
        _handler(message)
