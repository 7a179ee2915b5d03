"""Pure decisions on measured numbers: bounds, champion comparison, honesty of logged metrics.

Every function takes plain mappings of metric name to number and returns `Check` rows; nothing
here talks to MLflow. A metric that is missing or not a finite number never passes a bound or
beats a champion ("not measured").

Directions: a bound is `("min", x)` (measured must be >= x) or `("max", x)` (<= x). A comparison
direction is `"higher"` (higher is better) or `"lower"`; `"max"`/`"maximize"` and
`"min"`/`"minimize"` are accepted as aliases. When no direction is given, `default_direction`
uses `LOWER_IS_BETTER` (MLflow's error metrics) and otherwise assumes higher is better.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from regpilot.core.records import PlainRecord

Direction = Literal["higher", "lower"]

#: MLflow default-evaluator metrics where a smaller number is better.
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {
        "mean_squared_error",
        "root_mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "max_error",
        "log_loss",
        "false_positives",
        "false_negatives",
    }
)

_DIRECTION_ALIASES: dict[str, Direction] = {
    "higher": "higher",
    "max": "higher",
    "maximize": "higher",
    "higher_is_better": "higher",
    "lower": "lower",
    "min": "lower",
    "minimize": "lower",
    "lower_is_better": "lower",
}

# Float noise allowance when comparing against a bound or a required improvement.
_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Check(PlainRecord):
    """One row of a decision: what was expected, what was seen, and whether it passed."""

    name: str
    expected: str
    measured: float | None
    logged: float | None
    champion: float | None
    passed: bool
    detail: str


def normalise_direction(direction: str) -> Direction:
    """Map a direction or one of its aliases to "higher" or "lower"; ValueError otherwise."""
    try:
        return _DIRECTION_ALIASES[direction.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"direction must be one of {sorted(_DIRECTION_ALIASES)}, not {direction!r}"
        ) from None


def default_direction(metric: str) -> Direction:
    """ "lower" for MLflow's error metrics (LOWER_IS_BETTER), "higher" for everything else."""
    return "lower" if metric in LOWER_IS_BETTER else "higher"


def all_passed(checks: Iterable[Check]) -> bool:
    """True when every check passed (and vacuously for no checks)."""
    return all(check.passed for check in checks)


def _finite(value: object) -> float | None:
    """The value as a float when it is a finite real number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _margin(amount: float, above: str, below: str, level: str) -> str:
    """Describe a signed margin: "<above> by x", "<below> by x", or `level` within float noise."""
    if amount > _TOLERANCE:
        return f"{above} by {_fmt(amount)}"
    if amount < -_TOLERANCE:
        return f"{below} by {_fmt(-amount)}"
    return level


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _not_measured(name: str, measured: Mapping[str, float]) -> str:
    if name in measured:
        return f"{name} is not a finite number ({measured[name]!r})"
    names = ", ".join(sorted(measured)) or "nothing"
    return f"{name} was not measured (measured: {names})"


def measured_checks(
    measured: Mapping[str, float], bounds: Mapping[str, tuple[str, float]]
) -> list[Check]:
    """One check per bound, in the order of `bounds`.

    `("min", x)` passes when measured >= x, `("max", x)` when measured <= x; a metric that was
    not measured fails. Raises ValueError for a bound kind other than "min"/"max".
    """
    checks: list[Check] = []
    for name, (kind, bound) in bounds.items():
        if kind not in ("min", "max"):
            raise ValueError(f"bound for {name!r} must be 'min' or 'max', not {kind!r}")
        limit = float(bound)
        expected = f">= {_fmt(limit)}" if kind == "min" else f"<= {_fmt(limit)}"
        value = _finite(measured.get(name))
        if value is None:
            checks.append(
                Check(name, expected, None, None, None, False, _not_measured(name, measured))
            )
            continue
        if kind == "min":
            passed = value >= limit - _TOLERANCE
            detail = (
                f"{_fmt(value)} >= {_fmt(limit)}"
                if passed
                else f"{_fmt(value)} < {_fmt(limit)} (short by {_fmt(limit - value)})"
            )
        else:
            passed = value <= limit + _TOLERANCE
            detail = (
                f"{_fmt(value)} <= {_fmt(limit)}"
                if passed
                else f"{_fmt(value)} > {_fmt(limit)} (over by {_fmt(value - limit)})"
            )
        checks.append(Check(name, expected, value, None, None, passed, detail))
    return checks


def champion_check(
    candidate_measured: Mapping[str, float],
    champion_measured: Mapping[str, float] | None,
    metric: str,
    direction: str,
    min_improvement: float = 0.0,
) -> Check:
    """Does the candidate beat the champion on `metric` by at least `min_improvement`?

    The improvement is candidate - champion when higher is better, champion - candidate when
    lower is better; a negative `min_improvement` tolerates that much regression. With no
    champion measurement (no champion, or it lacks the metric) the check passes: there is
    nothing to beat. A candidate without the metric fails.
    """
    better = normalise_direction(direction)
    required = float(min_improvement)
    if not math.isfinite(required):
        raise ValueError("min_improvement must be a finite number")
    name = f"champion:{metric}"
    arrow = "higher" if better == "higher" else "lower"
    expected = f"{arrow} than champion by >= {_fmt(required)}"
    candidate = _finite(candidate_measured.get(metric))
    champion = None if champion_measured is None else _finite(champion_measured.get(metric))
    if candidate is None:
        return Check(
            name, expected, None, None, champion, False, _not_measured(metric, candidate_measured)
        )
    if champion is None:
        why = "no champion" if champion_measured is None else f"champion has no {metric}"
        return Check(name, expected, candidate, None, None, True, f"{why}: nothing to beat")
    gain = candidate - champion if better == "higher" else champion - candidate
    passed = gain >= required - _TOLERANCE
    detail = _margin(gain, "beats champion", "loses to champion", "ties champion")
    if not passed:
        detail += f" (needs an improvement of at least {_fmt(required)})"
    return Check(name, expected, candidate, None, champion, passed, detail)


def honesty_checks(
    logged: Mapping[str, float],
    measured: Mapping[str, float],
    logged_vs_measured: Mapping[str, str],
    max_gap: float,
    directions: Mapping[str, str] | None = None,
) -> list[Check]:
    """Does each self-reported (logged) metric agree with its measured twin?

    `logged_vs_measured` maps a logged metric name to the measured metric it claims to be
    (`{"val_acc": "accuracy_score"}`). A logged number *overstates* when it is better than the
    measurement: logged > measured for higher-is-better metrics, logged < measured for
    lower-is-better ones. The check fails when it overstates by more than `max_gap`
    ("overstates by 0.31"); understating never fails. `directions` gives a direction per logged
    name; otherwise `default_direction(measured name)`. A metric the model did not log passes
    (nothing claimed); one that cannot be measured, or whose logged value is not a finite number,
    fails.
    """
    gap = float(max_gap)
    if not (math.isfinite(gap) and gap >= 0):
        raise ValueError("max_gap must be a finite number >= 0")
    chosen = directions or {}
    checks: list[Check] = []
    for logged_name, measured_name in logged_vs_measured.items():
        given = chosen.get(logged_name)
        better = (
            normalise_direction(given) if given is not None else default_direction(measured_name)
        )
        name = f"honesty:{logged_name}"
        expected = f"within {_fmt(gap)} of measured {measured_name}"
        value = _finite(measured.get(measured_name))
        if logged_name not in logged:
            checks.append(
                Check(name, expected, value, None, None, True, "not logged: nothing claimed")
            )
            continue
        claim = _finite(logged[logged_name])
        if claim is None:
            detail = f"logged {logged_name} is not a finite number ({logged[logged_name]!r})"
            checks.append(Check(name, expected, value, None, None, False, detail))
            continue
        if value is None:
            detail = "cannot verify: " + _not_measured(measured_name, measured)
            checks.append(Check(name, expected, None, claim, None, False, detail))
            continue
        overstated = claim - value if better == "higher" else value - claim
        passed = overstated <= gap + _TOLERANCE
        detail = _margin(overstated, "overstates", "understates", "matches")
        if not passed:
            detail += f" (allowed {_fmt(gap)})"
        checks.append(Check(name, expected, value, claim, None, passed, detail))
    return checks
