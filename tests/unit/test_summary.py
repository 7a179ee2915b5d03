"""The one-line validation summary and the check explanations: pure functions of a verdict."""

from __future__ import annotations

from regpilot.core.gate import Candidate, Direction, GateRules, Threshold, evaluate
from regpilot.core.summary import (
    closest_names,
    explain_check,
    fit_line,
    validation_summary,
    version_description,
)
from regpilot.core.tags import MAX_SUMMARY_VALUE, VALIDATION_SUMMARY, is_safe_tag_key

RULES = GateRules(
    thresholds=(
        Threshold("test_accuracy", Direction.MIN, 0.85),
        Threshold("test_precision", Direction.MIN, 0.80),
        Threshold("test_rmse", Direction.MAX, 2.0),
    )
)


def test_a_passing_verdict_lists_every_check_with_its_value():
    verdict = evaluate(
        Candidate({"test_accuracy": 0.93, "test_precision": 0.9, "test_rmse": 1.5}), RULES
    )
    assert validation_summary(verdict) == (
        "PASSED 3/3: test_accuracy 0.93 >= 0.85, test_precision 0.9 >= 0.8, test_rmse 1.5 <= 2"
    )


def test_a_missing_metric_names_what_the_run_logged():
    logged = {"precision": 0.9, "f1_macro": 0.8, "test_accuracy": 0.9, "test_rmse": 1.0}
    verdict = evaluate(Candidate(logged), RULES)
    assert validation_summary(verdict, logged) == (
        "FAILED: test_precision missing; run logged f1_macro, precision, test_accuracy, test_rmse"
    )


def test_a_bound_failure_says_the_value_and_the_bound_without_listing_metrics():
    verdict = evaluate(
        Candidate({"test_accuracy": 0.6, "test_precision": 0.9, "test_rmse": 3.0}), RULES
    )
    assert validation_summary(verdict, ["test_accuracy"]) == (
        "FAILED: test_accuracy 0.6, needs >= 0.85, test_rmse 3, needs <= 2"
    )


def test_no_checks_is_said_plainly():
    assert validation_summary(evaluate(Candidate({}), GateRules())) == (
        "PASSED: the policy has no checks for this model"
    )


def test_the_summary_fits_the_tag_limit_on_one_line():
    many = GateRules(
        thresholds=tuple(Threshold(f"metric_{i:03d}", Direction.MIN, 0.5) for i in range(60))
    )
    logged = {f"other_metric_{i:03d}": 1.0 for i in range(60)}
    summary = validation_summary(evaluate(Candidate(logged), many), logged)
    assert len(summary) <= MAX_SUMMARY_VALUE and "\n" not in summary
    assert summary.startswith("FAILED: metric_000 missing") and summary.endswith("…")
    assert is_safe_tag_key(VALIDATION_SUMMARY)


def test_fit_line_cuts_at_a_word_and_joins_lines():
    assert fit_line("a\nb   c") == "a b c"
    assert fit_line("alpha beta gamma delta", limit=12) == "alpha beta…"


def test_explain_check_suggests_the_closest_logged_name():
    check = {
        "name": "test_precision",
        "expected": ">= 0.8",
        "actual": "missing",
        "result": "FAILED",
    }
    assert explain_check(check, ["precision", "f1_macro"]) == (
        "required test_precision missing; the run logged f1_macro, precision "
        "(did you mean precision?)"
    )
    assert "MLflow did not answer" in explain_check(check, None)
    assert explain_check(check, []) == "required test_precision missing; the run logged no metrics"


def test_explain_check_of_a_passed_and_a_bound_check():
    passed = {"name": "test_accuracy", "expected": ">= 0.85", "actual": "0.9", "result": "PASSED"}
    assert explain_check(passed, []) == "test_accuracy 0.9 >= 0.85: passed"
    low = {
        "name": "test_accuracy",
        "expected": ">= 0.85",
        "actual": "0.6",
        "result": "FAILED",
        "reason": "outside bound",
    }
    assert (
        explain_check(low, ["test_accuracy"]) == "test_accuracy 0.6, needs >= 0.85: outside bound"
    )


def test_closest_names_finds_typos_and_nothing_for_strangers():
    assert closest_names("test_precison", ["test_recall", "test_precision"])[0] == (
        "test_precision"
    )
    assert closest_names("latency_ms", ["test_precision", "f1_macro"]) == []


def test_version_description_states_the_verdict_and_the_run():
    verdict = evaluate(
        Candidate({"test_accuracy": 0.93, "test_precision": 0.9, "test_rmse": 1.5}), RULES
    )
    assert version_description(verdict, "abc") == (
        "Registered by regpilot from run abc: validation PASSED (3/3 checks). "
        "See the validation_summary and validation_report tags."
    )
    assert "without validation" in version_description(None, "abc")
