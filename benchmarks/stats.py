"""Summaries of repeated measurements: median and spread, never a single run."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Several repetitions of one measurement."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        """Summarise a non-empty sequence of measurements."""
        if not values:
            raise ValueError("no measurements to summarise")
        return cls(tuple(float(v) for v in values))

    @property
    def median(self) -> float:
        """Return the median repetition."""
        return float(statistics.median(self.values))

    @property
    def low(self) -> float:
        """Return the smallest repetition."""
        return min(self.values)

    @property
    def high(self) -> float:
        """Return the largest repetition."""
        return max(self.values)

    def spread_pct(self) -> float:
        """Return (max - min) / median in percent: how much the repetitions disagree."""
        return 100.0 * (self.high - self.low) / self.median if self.median else 0.0

    def cell(self, fmt: str = "{:,.0f}") -> str:
        """Return `median (min..max)` for a table cell."""
        if len(self.values) == 1:
            return fmt.format(self.median)
        return f"{fmt.format(self.median)} ({fmt.format(self.low)}..{fmt.format(self.high)})"


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100.0 * len(sorted_values))))
    return float(sorted_values[rank - 1])


def ratio_summary(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """Return the per-repetition ratios (runs paired by position, so noise hits both alike)."""
    return Summary.of([n / d for n, d in zip(numerators, denominators, strict=True) if d])
