"""The measured gate: turn an evaluation of the model on a dataset into core verdict checks.

Pure: the evaluation (and the champion's, on the same rows) is plain data measured elsewhere
(`regpilot.evaluation`), and the logged metrics are what the run reported about itself. The
checks come in the order the candidate must pass them: it loads, it predicts on its own input
example and matches its signature, its measured metrics pass their bounds, it beats the champion
on the same rows, and its self-report is honest.

The one module of this package that imports regpilot (the pure `regpilot.core.gate`): it is
the bridge from the engine's measurements to the gate's verdict, and core stays free of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from regpilot.core.gate import Check, Direction
from regpilot.evaluation.decide import Check as MeasuredCheck
from regpilot.evaluation.decide import champion_check, honesty_checks, measured_checks
from regpilot.evaluation.spec import EvaluationResult


@dataclass(frozen=True)
class MeasuredRules:
    """What the measured gate checks (built from a policy's `evaluation` block)."""

    bounds: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    champion_metric: str | None = None
    champion_direction: Direction = Direction.MIN
    min_improvement: float = 0.0
    logged_vs_measured: Mapping[str, str] = field(default_factory=dict)
    max_gap: float = 0.0


@dataclass(frozen=True)
class ChampionMeasurement:
    """The champion's evaluation on the same dataset digest, and which version it is."""

    version: str
    result: EvaluationResult


def _fmt(value: float | None) -> str:
    return "missing" if value is None else f"{value:.6g}"


def _as_gate_check(check: MeasuredCheck) -> Check:
    return Check(
        check.name,
        check.expected,
        _fmt(check.measured),
        check.passed,
        "" if check.passed else check.detail,
        measured=check.measured,
        logged=check.logged,
        champion=check.champion,
    )


def step_checks(result: EvaluationResult) -> list[Check]:
    """Return one check per evaluation step, after the one-line failure when there is one."""
    checks = (
        []
        if result.failure is None
        else [
            Check("evaluation", "measured", result.failure_kind or "failed", False, result.failure)
        ]
    )
    checks += [
        Check(
            f"evaluation:{step.name}",
            "passes",
            "passed" if step.passed else "failed",
            step.passed,
            "" if step.passed else step.detail,
        )
        for step in result.steps
    ]
    return checks


def measured_gate(
    result: EvaluationResult,
    rules: MeasuredRules,
    logged: Mapping[str, float],
    champion: ChampionMeasurement | None = None,
) -> list[Check]:
    """Return the measured gate's checks for one candidate's evaluation.

    A model that could not be measured (it did not load, raised in predict, timed out, the
    dataset was unusable) fails on its step checks alone: there is nothing to compare. A
    champion that could not be measured is nothing to beat (it must not block its replacement).
    """
    checks = step_checks(result)
    if result.failure is not None:
        return checks
    measured = result.measured
    checks.extend(_as_gate_check(c) for c in measured_checks(measured, rules.bounds))
    if rules.champion_metric is not None:
        checks.append(_champion(result, rules, champion))
    if rules.logged_vs_measured:
        checks.extend(
            _as_gate_check(c)
            for c in honesty_checks(
                _finite_only(logged), measured, rules.logged_vs_measured, rules.max_gap
            )
        )
    return checks


def _champion(
    result: EvaluationResult, rules: MeasuredRules, champion: ChampionMeasurement | None
) -> Check:
    assert rules.champion_metric is not None
    direction = "higher" if rules.champion_direction is Direction.MIN else "lower"
    champ_measured = None if champion is None else champion.result.measured
    check = _as_gate_check(
        champion_check(
            result.measured,
            champ_measured,
            rules.champion_metric,
            direction,
            rules.min_improvement,
        )
    )
    if champion is None:
        return check
    if champion.result.failure is not None:
        why = f"champion v{champion.version} could not be measured ({champion.result.failure})"
        return Check(check.name, check.expected, check.actual, check.passed, why, check.measured)
    if check.champion is not None:
        gain = (
            check.measured - check.champion
            if check.measured is not None and direction == "higher"
            else (check.champion - check.measured if check.measured is not None else math.nan)
        )
        actual = f"{_fmt(gain)} vs v{champion.version}"
        return Check(
            check.name,
            check.expected,
            actual,
            check.passed,
            check.reason,
            measured=check.measured,
            champion=check.champion,
        )
    return check


def measured_promotes(
    result: EvaluationResult,
    rules: MeasuredRules,
    champion: ChampionMeasurement | None,
) -> bool:
    """Tell whether a passing candidate should take the champion alias on measured numbers."""
    if rules.champion_metric is None or result.failure is not None:
        return False
    return _champion(result, rules, champion).passed


def _finite_only(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}
