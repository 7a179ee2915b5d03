"""decide.py: bounds, champion comparison and honesty of self-reported metrics (pure)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regpilot.evaluation.decide import (
    LOWER_IS_BETTER,
    Check,
    all_passed,
    champion_check,
    default_direction,
    honesty_checks,
    measured_checks,
    normalise_direction,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


# -- measured_checks ------------------------------------------------------------------------------


def test_min_and_max_bounds_pass_and_fail_with_details() -> None:
    checks = measured_checks(
        {"accuracy_score": 0.91, "log_loss": 0.7, "f1_score": 0.6},
        {
            "accuracy_score": ("min", 0.8),
            "log_loss": ("max", 0.5),
            "f1_score": ("min", 0.75),
        },
    )
    assert [c.name for c in checks] == ["accuracy_score", "log_loss", "f1_score"]
    assert [c.passed for c in checks] == [True, False, False]
    assert checks[0] == Check("accuracy_score", ">= 0.8", 0.91, None, None, True, "0.91 >= 0.8")
    assert checks[1].expected == "<= 0.5"
    assert checks[1].detail == "0.7 > 0.5 (over by 0.2)"
    assert checks[2].detail == "0.6 < 0.75 (short by 0.15)"
    assert all(c.logged is None and c.champion is None for c in checks)


def test_bound_is_inclusive_and_tolerates_float_noise() -> None:
    value = 0.1 + 0.2  # 0.30000000000000004
    assert measured_checks({"m": value}, {"m": ("max", 0.3)})[0].passed
    assert measured_checks({"m": 0.3}, {"m": ("min", 0.1 + 0.2)})[0].passed
    assert measured_checks({"m": 0.8}, {"m": ("min", 0.8)})[0].passed
    assert not measured_checks({"m": 0.7999}, {"m": ("min", 0.8)})[0].passed


def test_missing_and_non_finite_metrics_never_pass() -> None:
    measured = {"accuracy_score": float("nan"), "f1_score": 0.9, "roc_auc": float("inf")}
    checks = measured_checks(
        measured,
        {"accuracy_score": ("min", 0.0), "roc_auc": ("max", 1.0), "r2_score": ("min", -1e9)},
    )
    assert [c.passed for c in checks] == [False, False, False]
    assert all(c.measured is None for c in checks)
    assert "not a finite number" in checks[0].detail
    assert checks[2].detail == (
        "r2_score was not measured (measured: accuracy_score, f1_score, roc_auc)"
    )
    assert (
        measured_checks({}, {"x": ("min", 0)})[0].detail == "x was not measured (measured: nothing)"
    )


def test_booleans_and_strings_are_not_measurements() -> None:
    checks = measured_checks({"a": True, "b": "0.9"}, {"a": ("min", 0), "b": ("min", 0)})  # type: ignore[dict-item]
    assert [c.passed for c in checks] == [False, False]


def test_bad_bound_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="'min' or 'max'"):
        measured_checks({"m": 1.0}, {"m": ("atleast", 0.5)})


def test_no_bounds_no_checks() -> None:
    assert measured_checks({"m": 1.0}, {}) == []
    assert all_passed([])


@given(value=finite, bound=finite)
def test_min_and_max_agree_with_plain_comparison(value: float, bound: float) -> None:
    (low,) = measured_checks({"m": value}, {"m": ("min", bound)})
    (high,) = measured_checks({"m": value}, {"m": ("max", bound)})
    assert low.passed == (value >= bound - 1e-12)
    assert high.passed == (value <= bound + 1e-12)
    assert low.passed or high.passed  # every number is on one side of a bound


# -- champion_check -------------------------------------------------------------------------------


def test_candidate_beating_champion_by_enough_passes() -> None:
    check = champion_check({"f1_score": 0.84}, {"f1_score": 0.80}, "f1_score", "higher", 0.02)
    assert check.passed
    assert (check.name, check.measured, check.champion) == ("champion:f1_score", 0.84, 0.80)
    assert check.detail == "beats champion by 0.04"
    assert check.expected == "higher than champion by >= 0.02"


def test_candidate_losing_says_by_how_much() -> None:
    check = champion_check({"f1_score": 0.78}, {"f1_score": 0.80}, "f1_score", "higher", 0.0)
    assert not check.passed
    assert check.detail == "loses to champion by 0.02 (needs an improvement of at least 0)"


def test_improvement_below_the_required_margin_fails() -> None:
    check = champion_check({"f1_score": 0.805}, {"f1_score": 0.80}, "f1_score", "higher", 0.01)
    assert not check.passed
    assert check.detail.startswith("beats champion by 0.005 (needs an improvement of at least 0.01")


def test_lower_is_better_metric_compares_the_other_way() -> None:
    won = champion_check({"rmse": 1.5}, {"rmse": 2.0}, "rmse", "lower", 0.1)
    lost = champion_check({"rmse": 2.5}, {"rmse": 2.0}, "rmse", "min", 0.0)
    assert won.passed and won.detail == "beats champion by 0.5"
    assert not lost.passed and lost.detail.startswith("loses to champion by 0.5")


def test_negative_margin_tolerates_a_small_regression() -> None:
    assert champion_check({"a": 0.795}, {"a": 0.8}, "a", "higher", -0.01).passed
    assert not champion_check({"a": 0.78}, {"a": 0.8}, "a", "higher", -0.01).passed


def test_tie_passes_only_without_a_required_improvement() -> None:
    assert champion_check({"a": 0.8}, {"a": 0.8}, "a", "higher", 0.0).detail == "ties champion"
    assert champion_check({"a": 0.8}, {"a": 0.8}, "a", "higher", 0.0).passed
    assert not champion_check({"a": 0.8}, {"a": 0.8}, "a", "higher", 0.001).passed


def test_no_champion_means_nothing_to_beat() -> None:
    none = champion_check({"a": 0.5}, None, "a", "higher", 0.1)
    lacking = champion_check({"a": 0.5}, {"b": 0.9}, "a", "higher", 0.1)
    assert none.passed and none.detail == "no champion: nothing to beat"
    assert lacking.passed and lacking.detail == "champion has no a: nothing to beat"
    assert none.champion is None


def test_candidate_without_the_metric_fails_even_without_champion() -> None:
    check = champion_check({"b": 0.9}, None, "a", "higher", 0.0)
    assert not check.passed and check.measured is None
    assert check.detail == "a was not measured (measured: b)"


def test_champion_check_rejects_bad_direction_and_margin() -> None:
    with pytest.raises(ValueError, match="direction"):
        champion_check({"a": 1}, {"a": 1}, "a", "sideways", 0)
    with pytest.raises(ValueError, match="min_improvement"):
        champion_check({"a": 1}, {"a": 1}, "a", "higher", math.nan)


@given(candidate=finite, champion=finite, margin=st.floats(-10, 10))
def test_champion_check_is_antisymmetric_in_direction(
    candidate: float, champion: float, margin: float
) -> None:
    higher = champion_check({"m": candidate}, {"m": champion}, "m", "higher", margin)
    lower = champion_check({"m": -candidate}, {"m": -champion}, "m", "lower", margin)
    assert higher.passed == lower.passed


# -- honesty_checks -------------------------------------------------------------------------------


def test_overstated_accuracy_fails_and_says_by_how_much() -> None:
    (check,) = honesty_checks(
        {"val_acc": 0.97}, {"accuracy_score": 0.66}, {"val_acc": "accuracy_score"}, 0.05
    )
    assert not check.passed
    assert check.detail == "overstates by 0.31 (allowed 0.05)"
    assert (check.name, check.logged, check.measured) == ("honesty:val_acc", 0.97, 0.66)
    assert check.expected == "within 0.05 of measured accuracy_score"


def test_small_gap_and_understatement_pass() -> None:
    checks = honesty_checks(
        {"acc": 0.92, "f1": 0.70, "auc": 0.9},
        {"accuracy_score": 0.90, "f1_score": 0.80, "roc_auc": 0.9},
        {"acc": "accuracy_score", "f1": "f1_score", "auc": "roc_auc"},
        0.05,
    )
    assert [c.passed for c in checks] == [True, True, True]
    assert checks[0].detail == "overstates by 0.02"
    assert checks[1].detail == "understates by 0.1"
    assert checks[2].detail == "matches"


def test_lower_is_better_pairs_overstate_by_claiming_less() -> None:
    # MLflow's error metrics default to lower-is-better: claiming a smaller error overstates.
    (mse,) = honesty_checks(
        {"val_mse": 0.01}, {"mean_squared_error": 0.5}, {"val_mse": "mean_squared_error"}, 0.1
    )
    assert not mse.passed and mse.detail == "overstates by 0.49 (allowed 0.1)"
    # An explicit direction wins over the default.
    (custom,) = honesty_checks(
        {"loss": 0.2}, {"my_loss": 0.6}, {"loss": "my_loss"}, 0.1, directions={"loss": "lower"}
    )
    assert not custom.passed and custom.detail.startswith("overstates by 0.4")
    (default_higher,) = honesty_checks({"loss": 0.2}, {"my_loss": 0.6}, {"loss": "my_loss"}, 0.1)
    assert default_higher.passed and default_higher.detail == "understates by 0.4"


def test_metric_not_logged_claims_nothing() -> None:
    (check,) = honesty_checks({}, {"accuracy_score": 0.9}, {"val_acc": "accuracy_score"}, 0.0)
    assert check.passed and check.logged is None and check.measured == 0.9
    assert check.detail == "not logged: nothing claimed"


def test_claim_that_cannot_be_verified_fails() -> None:
    (check,) = honesty_checks({"val_acc": 0.9}, {"f1_score": 0.9}, {"val_acc": "accuracy_score"}, 1)
    assert not check.passed and check.logged == 0.9
    assert check.detail == "cannot verify: accuracy_score was not measured (measured: f1_score)"


def test_non_finite_logged_value_fails() -> None:
    (check,) = honesty_checks(
        {"val_acc": float("nan")}, {"accuracy_score": 0.9}, {"val_acc": "accuracy_score"}, 1
    )
    assert not check.passed and check.logged is None
    assert check.detail.startswith("logged val_acc is not a finite number")


def test_gap_exactly_at_the_limit_passes() -> None:
    (check,) = honesty_checks({"a": 0.85}, {"b": 0.8}, {"a": "b"}, 0.85 - 0.8)
    assert check.passed


def test_honesty_rejects_bad_gap_and_direction() -> None:
    with pytest.raises(ValueError, match="max_gap"):
        honesty_checks({}, {}, {}, -0.1)
    with pytest.raises(ValueError, match="max_gap"):
        honesty_checks({}, {}, {}, math.inf)
    with pytest.raises(ValueError, match="direction"):
        honesty_checks({"a": 1}, {"b": 1}, {"a": "b"}, 0, directions={"a": "up"})


@given(logged=finite, measured=finite, gap=st.floats(0, 100))
def test_honesty_fails_exactly_when_overstating_beyond_the_gap(
    logged: float, measured: float, gap: float
) -> None:
    (check,) = honesty_checks({"l": logged}, {"m": measured}, {"l": "m"}, gap)
    assert check.passed == (logged - measured <= gap + 1e-12)


# -- directions and rows --------------------------------------------------------------------------


def test_direction_aliases_and_defaults() -> None:
    assert normalise_direction("MAX") == "higher"
    assert normalise_direction(" minimize ") == "lower"
    assert normalise_direction("lower_is_better") == "lower"
    with pytest.raises(ValueError):
        normalise_direction("up")
    assert default_direction("root_mean_squared_error") == "lower"
    assert default_direction("accuracy_score") == "higher"
    assert default_direction("r2_score") == "higher"
    assert {"log_loss", "mean_squared_error", "max_error"} <= LOWER_IS_BETTER


def test_check_rows_serialise_and_aggregate() -> None:
    row = Check("a", ">= 1", 2.0, None, None, True, "2 >= 1")
    assert row.as_dict() == {
        "name": "a",
        "expected": ">= 1",
        "measured": 2.0,
        "logged": None,
        "champion": None,
        "passed": True,
        "detail": "2 >= 1",
    }
    assert all_passed([row]) and not all_passed([row, Check("b", "", None, None, None, False, "")])
