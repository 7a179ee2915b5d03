"""The parallel run's hand-out order: longest units first, a light one behind each."""

from __future__ import annotations

from tests.scheduling import handout_order

# (test, unit, seconds): two groups of two tests and single tests.
TESTS = [
    ("a", "a", 0),
    ("g1", "evaluation-flow", 0),
    ("b", "b", 140),
    ("g2", "evaluation-flow", 0),
    ("c", "c", 0),
    ("d", "d", 30),
    ("e", "e", 0),
    ("h1", "notify-stack", 0),
]


def _order(workers: int) -> list[str]:
    ordered = handout_order(TESTS, lambda t: t[1], lambda t: float(t[2]), workers)
    return [name for name, _, _ in ordered]


def test_heaviest_units_go_first_then_as_many_light_ones_then_the_rest():
    # Weights: evaluation-flow 185 (its group's), b 140, d 30, notify-stack 25; a, c, e light.
    assert _order(2) == ["g1", "g2", "b", "a", "c", "d", "h1", "e"]


def test_a_groups_tests_stay_together_and_in_order_and_nothing_is_lost():
    for workers in (1, 3, 6, 20):
        order = _order(workers)
        assert sorted(order) == sorted(name for name, _, _ in TESTS)
        assert order.index("g2") == order.index("g1") + 1
