"""The validation gate: one pure function decides whether a model may be registered."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from regpilot.core.registry_port import READY, RunPhase, run_phase
from regpilot.core.tags import FAILED, PASSED, fit_json


class Direction(StrEnum):
    """Which way a metric improves."""

    MIN = "min"  # a floor: higher is better (accuracy)
    MAX = "max"  # a ceiling: lower is better (rmse, latency)


@dataclass(frozen=True)
class Threshold:
    """A required metric and its bound."""

    metric: str
    direction: Direction
    bound: float


@dataclass(frozen=True)
class ChampionRule:
    """The candidate must improve on the current champion's metric by at least `min_improvement`."""

    metric: str
    direction: Direction
    min_improvement: float = 0.0


@dataclass(frozen=True)
class GateRules:
    """Everything the gate checks for one model."""

    thresholds: tuple[Threshold, ...] = ()
    require_signature: bool = False
    required_tags: tuple[str, ...] = ()
    required_params: tuple[str, ...] = ()
    champion: ChampionRule | None = None


@dataclass(frozen=True)
class Candidate:
    """What the gate sees of a model: plain data read from the registry."""

    metrics: Mapping[str, float]
    has_signature: bool | None = None
    # Whether it can be served at all; None where unknown (no run, not an MLflow 3 model).
    run_status: str | None = None
    model_status: str | None = None
    has_mlmodel: bool | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One line of a verdict."""

    name: str
    expected: str
    actual: str
    passed: bool
    reason: str = ""
    # Numbers of a measured check (evaluation on a dataset): what was measured, what the run
    # logged about itself, and the champion's measurement on the same rows.
    measured: float | None = None
    logged: float | None = None
    champion: float | None = None

    def numbers(self) -> dict[str, float]:
        """Return the measured, logged and champion numbers that are present."""
        values = {"measured": self.measured, "logged": self.logged, "champion": self.champion}
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class Verdict:
    """The outcome of the gate: passed only if every check passed."""

    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        """Tell whether every check passed."""
        return all(check.passed for check in self.checks)

    @property
    def status(self) -> str:
        """Return PASSED or FAILED, the value of the validation_status tag."""
        return PASSED if self.passed else FAILED

    @property
    def failures(self) -> tuple[Check, ...]:
        """Return the checks that failed."""
        return tuple(check for check in self.checks if not check.passed)

    def as_dict(self) -> dict[str, Any]:
        """Return the full verdict as plain data."""
        return {
            "status": self.status,
            "checks": [
                {
                    "name": c.name,
                    "expected": c.expected,
                    "actual": c.actual,
                    "result": PASSED if c.passed else FAILED,
                    "reason": c.reason,
                    **c.numbers(),
                }
                for c in self.checks
            ],
        }

    def report(self, limit: int = 1000) -> str:
        """Return the compact JSON report stored in the validation_report tag.

        Failing checks come first, so when the report must be shortened to fit the tag it is
        the passing ones that are dropped; a measured check carries its numbers.
        """
        ordered = [*self.failures, *(c for c in self.checks if c.passed)]
        compact: dict[str, Any] = {
            "status": self.status,
            "checks": [
                [c.name, c.expected, c.actual, PASSED if c.passed else FAILED]
                + ([c.numbers()] if c.numbers() else [])
                for c in ordered
            ],
        }
        reasons = [c.reason for c in self.failures if c.reason]
        if reasons:
            compact["reasons"] = reasons
        return fit_json(compact, limit)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def is_better(candidate: float, reference: float, direction: Direction) -> float:
    """Return how much `candidate` improves on `reference` (negative when worse)."""
    return candidate - reference if direction is Direction.MIN else reference - candidate


def _threshold_check(threshold: Threshold, metrics: Mapping[str, float]) -> Check:
    op = ">=" if threshold.direction is Direction.MIN else "<="
    expected = f"{op} {_fmt(threshold.bound)}"
    if threshold.metric not in metrics:
        return Check(threshold.metric, expected, "missing", False, "required metric is missing")
    actual = metrics[threshold.metric]
    if math.isnan(actual):
        return Check(threshold.metric, expected, "nan", False, "metric is NaN")
    if threshold.direction is Direction.MIN:
        ok = actual >= threshold.bound
    else:
        ok = actual <= threshold.bound
    return Check(threshold.metric, expected, _fmt(actual), ok, "" if ok else "outside bound")


def _champion_check(
    rule: ChampionRule,
    metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    champion_version: str | None,
) -> Check:
    name = f"champion:{rule.metric}"
    expected = f"improve by >= {_fmt(rule.min_improvement)}"
    if champion_metrics is None:
        return Check(name, expected, "no champion", True, "no champion yet: comparison passes")
    if rule.metric not in metrics:
        return Check(name, expected, "missing", False, "candidate lacks the comparison metric")
    if rule.metric not in champion_metrics:
        return Check(
            name,
            expected,
            "champion lacks metric",
            True,
            "champion has no value: comparison passes",
        )
    gain = is_better(metrics[rule.metric], champion_metrics[rule.metric], rule.direction)
    if math.isnan(gain):
        return Check(name, expected, "nan", False, "metric is NaN")
    ok = gain >= rule.min_improvement
    actual = f"{_fmt(gain)} vs v{champion_version}" if champion_version else _fmt(gain)
    return Check(name, expected, actual, ok, "" if ok else "does not beat the champion")


def evaluate(
    candidate: Candidate,
    rules: GateRules,
    *,
    champion_metrics: Mapping[str, float] | None = None,
    champion_version: str | None = None,
) -> Verdict:
    """Return the verdict for a candidate model under a model's rules.

    Whether the model can be served at all comes first (a failed run, a logged model that is
    not READY, no MLmodel file: never blessed, whatever its metrics), then the signature,
    because Unity Catalog refuses a model without one: a reader sees the blocking reason at
    the top of the report.
    """
    checks = servable_checks(candidate)
    if rules.require_signature:
        has = bool(candidate.has_signature)
        checks.append(
            Check(
                "signature",
                "present",
                "present" if has else "missing",
                has,
                "" if has else "model has no signature (Unity Catalog requires one)",
            )
        )
    checks.extend(_threshold_check(t, candidate.metrics) for t in rules.thresholds)
    checks.extend(_presence_checks("tag", rules.required_tags, candidate.tags))
    checks.extend(_presence_checks("param", rules.required_params, candidate.params))
    if rules.champion is not None:
        checks.append(
            _champion_check(rules.champion, candidate.metrics, champion_metrics, champion_version)
        )
    return Verdict(tuple(checks))


def servable_checks(candidate: Candidate) -> list[Check]:
    """Return the checks that the model can be served: its run ended well, it is complete.

    A run still RUNNING is not failed here: the paths that must wait for it retry instead
    (see `run_phase`); a dry run judges it as it stands.
    """
    checks: list[Check] = []
    if candidate.run_status is not None and run_phase(candidate.run_status) is RunPhase.FAILED:
        checks.append(
            Check(
                "run_status",
                "FINISHED",
                candidate.run_status,
                False,
                f"the run ended {candidate.run_status}: its model may be incomplete",
            )
        )
    if candidate.model_status is not None and candidate.model_status != READY:
        checks.append(
            Check(
                "model_status",
                READY,
                candidate.model_status,
                False,
                f"the logged model is {candidate.model_status}, not {READY}: it cannot be served",
            )
        )
    if candidate.has_mlmodel is False:
        checks.append(
            Check(
                "mlmodel",
                "present",
                "missing",
                False,
                "the model directory has no MLmodel file: it cannot be loaded",
            )
        )
    return checks


def _presence_checks(kind: str, names: Sequence[str], present: Mapping[str, str]) -> list[Check]:
    return [
        Check(
            f"{kind}:{name}",
            "present",
            "present" if name in present else "missing",
            name in present,
            "" if name in present else f"required run {kind} is missing",
        )
        for name in names
    ]


def should_promote(
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    rule: ChampionRule,
) -> bool:
    """Tell whether a passing challenger should take the champion alias."""
    if rule.metric not in candidate_metrics:
        return False
    if champion_metrics is None or rule.metric not in champion_metrics:
        return True
    gain = is_better(candidate_metrics[rule.metric], champion_metrics[rule.metric], rule.direction)
    return not math.isnan(gain) and gain >= rule.min_improvement
