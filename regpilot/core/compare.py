"""Side-by-side metrics of two model versions: every metric of either, missing kept missing."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from regpilot.core.gate import Direction, GateRules


class Change(StrEnum):
    """How the new value relates to the old one, given the metric's direction."""

    BETTER = "better"
    WORSE = "worse"
    SAME = "same"
    CHANGED = "changed"  # no known direction: only the sign of the delta is meaningful
    ONLY_OLD = "only in old"
    ONLY_NEW = "only in new"
    NOT_COMPARABLE = "not comparable"


@dataclass(frozen=True)
class MetricDelta:
    """One metric of a comparison; `old`/`new` are None when the run lacks the metric."""

    metric: str
    old: float | None
    new: float | None
    delta: float | None
    change: Change


def directions_of(rules: GateRules) -> dict[str, Direction]:
    """Return which way each metric the policy knows about improves."""
    directions = {t.metric: t.direction for t in rules.thresholds}
    if rules.champion is not None:
        directions.setdefault(rules.champion.metric, rules.champion.direction)
    return directions


def compare_metrics(
    old: Mapping[str, float],
    new: Mapping[str, float],
    directions: Mapping[str, Direction] | None = None,
) -> tuple[MetricDelta, ...]:
    """Return every metric of either side, sorted by name, with new - old where both exist.

    A metric present on one side only is reported as such: defaulting it to 0 would invent a
    delta. NaN on either side gives no delta.
    """
    known = directions or {}
    rows = []
    for metric in sorted(set(old) | set(new)):
        before, after = old.get(metric), new.get(metric)
        if before is None or after is None:
            change = Change.ONLY_NEW if before is None else Change.ONLY_OLD
            rows.append(MetricDelta(metric, before, after, None, change))
            continue
        if math.isnan(before) or math.isnan(after):
            rows.append(MetricDelta(metric, before, after, None, Change.NOT_COMPARABLE))
            continue
        delta = after - before
        rows.append(MetricDelta(metric, before, after, delta, _change(delta, known.get(metric))))
    return tuple(rows)


def _change(delta: float, direction: Direction | None) -> Change:
    if delta == 0:
        return Change.SAME
    if direction is None:
        return Change.CHANGED
    improved = delta > 0 if direction is Direction.MIN else delta < 0
    return Change.BETTER if improved else Change.WORSE
