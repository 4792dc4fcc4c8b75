"""Summaries of repeated measurements: the median and the range, never a lone mean.

On a shared, noisy machine one slow round says nothing; the median over rounds and the
min-max beside it say how much to trust a figure. Ratios are taken per round (A and B
measured back to back) before summarising, so that a slow spell hits both sides of a
ratio instead of skewing one of them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class Summary:
    """Median and range of one set of measurements."""

    median: float
    low: float
    high: float
    count: int
    p90: float = 0.0
    """The 90th percentile (nearest rank): for latencies, where the tail matters."""

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no measurements to summarise")
        ordered = sorted(values)
        p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
        return cls(statistics.median(values), ordered[0], ordered[-1], len(values), p90)


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """The summary of numerators[i] / denominators[i]: each ratio within one round."""
    if len(numerators) != len(denominators):
        raise ValueError("paired ratios need the same number of measurements on both sides")
    return Summary.of([a / b for a, b in zip(numerators, denominators, strict=True)])
