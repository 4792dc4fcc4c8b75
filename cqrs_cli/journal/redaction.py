"""Locators as text: which kind of journal a locator names, and its form fit to show
(never with a password). Apart from locator.py so that backends can use it too."""

from __future__ import annotations


def scheme_of(locator: str) -> str | None:
    """The URL scheme of `locator` (`postgresql` for `postgresql://...`), or None for a
    plain path."""
    head, sep, _ = locator.partition("://")
    if not sep or not head or not head[0].isalpha():
        return None
    if all(ch.isalnum() or ch in "+-." for ch in head):
        return head.lower()
    return None


def redacted(locator: str) -> str:
    """`locator` fit to show: a URL's password (in its user part or as a `password=`
    parameter) replaced by `***`."""
    scheme = scheme_of(locator)
    if scheme is None:
        return locator
    prefix, rest = locator[: len(scheme) + 3], locator[len(scheme) + 3 :]
    # The user part ends at the last "@" before the query: a password may hold "/",
    # "?" or "@" unencoded, and must not leak through a naive split.
    query_at = rest.find("?", rest.rfind("@") + 1)
    end = len(rest) if query_at < 0 else query_at
    at = rest.rfind("@", 0, end)
    userinfo, hostpart = (rest[:at], rest[at:]) if at >= 0 else ("", rest)
    if ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    path, question, query = hostpart.partition("?")
    if query:
        query = "&".join(
            "password=***" if part.startswith("password=") else part for part in query.split("&")
        )
    return f"{prefix}{userinfo}{path}{question}{query}"
