"""The wall clock, in the one form cqrs stores: UTC, ISO 8601, microseconds, a Z.

The write side stamps events with it (`recorded_at`) and sync stamps checkpoints; both
take it from here, so neither imports the other. Text in this form sorts as time does,
which time travel (`--as-of`) relies on.
"""

from __future__ import annotations

import time


def utc_now() -> str:
    """The current time in UTC, ISO 8601 with microseconds and a Z."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
