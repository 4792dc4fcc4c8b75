"""Every view of the projection, in build order. To add a view, write its module in
this package (like item_history.py) and add its VIEW to _VIEWS below.

Schema creation, sync (catch-up, first build, --rebuild), `cqrs status` and the tests'
projection dumps all loop over `views()`. `register` adds a view at run time (tests).
"""

from __future__ import annotations

from . import item_history, item_search, items

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .base import View

# A view comes after every view it depends on (items reads item_history in its bulk
# build; item_search indexes items).
_VIEWS: list[View] = [item_history.VIEW, items.VIEW, item_search.VIEW]


def views() -> tuple[View, ...]:
    return tuple(_VIEWS)


def register(view: View) -> None:
    """Add `view` after the others. ValueError if its name is taken or it depends on a
    view that is not registered before it."""
    names = {known.name for known in _VIEWS}
    if view.name in names:
        raise ValueError(f"a view named {view.name!r} is registered already")
    missing = [name for name in view.depends_on if name not in names]
    if missing:
        raise ValueError(f"view {view.name!r} depends on unregistered views {missing}")
    _VIEWS.append(view)


def unregister(name: str) -> None:
    """Remove the view called `name` (KeyError if there is none)."""
    for index, view in enumerate(_VIEWS):
        if view.name == name:
            del _VIEWS[index]
            return
    raise KeyError(name)
