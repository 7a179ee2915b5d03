"""The gate: direction, missing metrics, margins, ties, requirements (exhaustive and property)."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from regpilot.core.gate import (
    Candidate,
    ChampionRule,
    Direction,
    GateRules,
    Threshold,
    evaluate,
    should_promote,
)

SEED = GateRules(
    thresholds=(
        Threshold("test_accuracy", Direction.MIN, 0.85),
        Threshold("test_precision", Direction.MIN, 0.80),
        Threshold("test_recall", Direction.MIN, 0.80),
    )
)


def test_seed_gate_passes_good_metrics():
    verdict = evaluate(
        Candidate({"test_accuracy": 0.9, "test_precision": 0.8, "test_recall": 0.81}), SEED
    )
    assert verdict.passed and verdict.status == "PASSED"


def test_bound_itself_passes_both_ways():
    assert evaluate(
        Candidate({"a": 0.85}), GateRules((Threshold("a", Direction.MIN, 0.85),))
    ).passed
    assert evaluate(Candidate({"r": 0.3}), GateRules((Threshold("r", Direction.MAX, 0.3),))).passed


def test_max_direction_fails_above_the_ceiling():
    verdict = evaluate(
        Candidate({"rmse": 0.31}), GateRules((Threshold("rmse", Direction.MAX, 0.3),))
    )
    assert not verdict.passed
    assert verdict.failures[0].expected == "<= 0.3"


def test_missing_metric_fails_with_reason():
    verdict = evaluate(Candidate({"test_accuracy": 0.99, "test_precision": 0.99}), SEED)
    (failure,) = verdict.failures
    assert failure.name == "test_recall" and failure.actual == "missing"
    assert failure.reason == "required metric is missing"


def test_nan_fails():
    assert not evaluate(
        Candidate({"a": math.nan}), GateRules((Threshold("a", Direction.MIN, 0),))
    ).passed


def test_signature_check_comes_first_and_blocks():
    rules = GateRules(thresholds=SEED.thresholds, require_signature=True)
    verdict = evaluate(
        Candidate({"test_accuracy": 1, "test_precision": 1, "test_recall": 1}, has_signature=False),
        rules,
    )
    assert verdict.checks[0].name == "signature" and not verdict.passed
    assert "Unity Catalog" in verdict.checks[0].reason


def test_required_tags_and_params():
    rules = GateRules(required_tags=("team",), required_params=("C",))
    assert not evaluate(Candidate({}, params={}, tags={}), rules).passed
    assert evaluate(Candidate({}, params={"C": "1"}, tags={"team": "x"}), rules).passed


def test_champion_absent_passes_and_says_so():
    rules = GateRules(champion=ChampionRule("acc", Direction.MIN, 0.01))
    verdict = evaluate(Candidate({"acc": 0.5}), rules, champion_metrics=None)
    assert verdict.passed
    assert "no champion" in verdict.checks[0].reason


def test_champion_margin_direction_aware_and_ties():
    higher = ChampionRule("acc", Direction.MIN, 0.01)
    assert evaluate(
        Candidate({"acc": 0.92}), GateRules(champion=higher), champion_metrics={"acc": 0.90}
    ).passed
    assert not evaluate(
        Candidate({"acc": 0.905}), GateRules(champion=higher), champion_metrics={"acc": 0.90}
    ).passed
    lower = ChampionRule("rmse", Direction.MAX, 0.0)
    assert evaluate(
        Candidate({"rmse": 0.2}), GateRules(champion=lower), champion_metrics={"rmse": 0.2}
    ).passed  # a tie with margin 0 passes
    assert not evaluate(
        Candidate({"rmse": 0.21}), GateRules(champion=lower), champion_metrics={"rmse": 0.2}
    ).passed


def test_report_is_compact_json_within_limit():
    many = GateRules(
        thresholds=tuple(Threshold(f"metric_{i:03d}", Direction.MIN, 0.5) for i in range(200))
    )
    report = evaluate(Candidate({}), many).report()
    assert len(report) <= 1000
    parsed = json.loads(report)
    assert parsed["status"] == "FAILED" and parsed["truncated"] is True


@given(
    value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    bound=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
)
def test_min_and_max_are_mirror_images(value, bound):
    at_least = evaluate(Candidate({"m": value}), GateRules((Threshold("m", Direction.MIN, bound),)))
    at_most = evaluate(Candidate({"m": value}), GateRules((Threshold("m", Direction.MAX, bound),)))
    assert at_least.passed == (value >= bound)
    assert at_most.passed == (value <= bound)
    assert at_least.passed or at_most.passed


@given(
    candidate=st.floats(min_value=0, max_value=1),
    champion=st.floats(min_value=0, max_value=1),
    margin=st.floats(min_value=0, max_value=0.5),
    direction=st.sampled_from(list(Direction)),
)
def test_promotion_agrees_with_gate_comparison(candidate, champion, margin, direction):
    rule = ChampionRule("m", direction, margin)
    gate = evaluate(
        Candidate({"m": candidate}), GateRules(champion=rule), champion_metrics={"m": champion}
    )
    assert should_promote({"m": candidate}, {"m": champion}, rule) == gate.passed
