"""The order a parallel run hands tests out in: the longest first, each with a short one behind.

pytest-xdist (`--dist loadgroup --no-loadscope-reorder`) hands out work units (a group's tests,
or one test) in collection order: first one unit to each process, then one more to each process
whose unit has at most two tests (a process needs the next test queued to run its current one).
So a unit queued behind a long single test waits for it. Handing out the longest units first, and
a short one right behind each, keeps two long units off one process; the total time is then close
to the longest unit, not two of them.

The weights are rough seconds measured on the 2-core machine: `@pytest.mark.slow(140)` on a test,
`GROUP_SECONDS` for a group (mostly its servers' start-up), and `slow` without a number counts
as DEFAULT_SLOW_SECONDS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

DEFAULT_SLOW_SECONDS = 30.0
GROUP_SECONDS = {
    "evaluation-flow": 185.0,
    "pausable-mlflow": 150.0,
    "own-mlflow": 140.0,
    "evaluation-engine": 110.0,
    "databricks": 80.0,
    "notify-stack": 25.0,
}

Item = TypeVar("Item")


def handout_order(
    items: Sequence[Item],
    scope_of: Callable[[Item], str],
    seconds_of: Callable[[Item], float],
    workers: int,
) -> list[Item]:
    """Return `items` by unit: the `workers` heaviest, as many light ones, then the rest.

    A unit's weight is its group's (when `scope_of` names a group in GROUP_SECONDS) or the sum
    of its tests'. Heavy units go heaviest first; light ones keep their collection order, and
    tests keep their order within a unit.
    """
    units: dict[str, list[Item]] = {}
    for item in items:
        units.setdefault(scope_of(item), []).append(item)
    weight = {
        scope: GROUP_SECONDS.get(scope, sum(seconds_of(item) for item in members))
        for scope, members in units.items()
    }
    heavy = sorted((s for s in units if weight[s] > 0), key=lambda s: -weight[s])
    light = [s for s in units if weight[s] == 0]
    first = max(workers, 1)
    order = heavy[:first] + light[:first] + heavy[first:] + light[first:]
    return [item for scope in order for item in units[scope]]
