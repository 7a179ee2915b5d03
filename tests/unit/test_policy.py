"""The policy file: seed defaults, inheritance, directions, and errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.policy import PolicyError, load_policy, parse_policy
from regpilot.core.gate import Direction

SHIPPED = Path(__file__).parents[2] / "config" / "policy.yaml"


def test_shipped_policy_is_the_seed_gate():
    rules = load_policy(SHIPPED).for_model("anything").gate_rules()
    assert [(t.metric, t.direction, t.bound) for t in rules.thresholds] == [
        ("test_accuracy", Direction.MIN, 0.85),
        ("test_precision", Direction.MIN, 0.80),
        ("test_recall", Direction.MIN, 0.80),
    ]
    retention = load_policy(SHIPPED).for_model("x").retention_rules()
    assert retention.keep == 10 and retention.protected_stages == {"Production", "Staging"}


def test_model_override_inherits_and_can_drop_or_flip_metrics():
    policy = parse_policy(
        "models:\n  reg:\n    metrics:\n      test_accuracy: null\n      rmse: {max: 0.3}\n"
        "    retention: {keep: 2}\n"
    )
    rules = policy.for_model("reg").gate_rules()
    assert {t.metric for t in rules.thresholds} == {"test_precision", "test_recall", "rmse"}
    assert policy.for_model("reg").retention.keep == 2
    assert policy.for_model("reg").retention.action == "archive"  # inherited
    assert policy.for_model("other").retention.keep == 10


def test_uc_short_name_matches_override():
    policy = parse_policy("models:\n  fraud:\n    retention: {keep: 4}\n")
    assert policy.for_model("main.ml_models.fraud").retention.keep == 4


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("defaults:\n  bogus: 1\n", 2, "defaults.bogus"),
        ("defaults:\n  metrics:\n    acc: {min: 1, max: 2}\n", 3, "defaults.metrics.acc"),
        ("models:\n  m:\n    retention:\n      keep: 0\n", 4, "models.m.retention.keep"),
        ("models:\n  m:\n    auto_promote: true\n", 2, "models.m"),
        ("surprise: 1\n", 1, "surprise"),
    ],
)
def test_invalid_policy_names_file_line_and_field(text, line, field):
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml")
    message = str(info.value)
    assert message.startswith(f"p.yaml:{line}:")
    assert f"'{field}'" in message


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(PolicyError, match=r"p.yaml:2: not valid YAML"):
        parse_policy("defaults:\n  metrics: {a: b: c}\nmodels: {}\n", "p.yaml")


def test_missing_file_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_every_problem_is_reported_at_once_in_plain_words():
    text = (
        "defaults:\n"
        "  retention:\n"
        "    kep: 3\n"  # line 3: a typo of keep
        "models:\n"
        "  wine:\n"
        "    auto_promote: maybe\n"  # line 6
        "  iris:\n"
        "    metrics:\n"
        "      test_accuracy: {min: high}\n"  # line 9
    )
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml")
    assert info.value.problems == [
        "p.yaml:3: policy key 'defaults.retention.kep': unknown key 'kep'; did you mean 'keep'?",
        "p.yaml:6: policy key 'models.wine.auto_promote': 'auto_promote' must be true or false, "
        "not 'maybe'",
        "p.yaml:9: policy key 'models.iris.metrics.test_accuracy.min': 'min' must be a number, "
        "not 'high'",
    ]
    assert str(info.value).startswith("invalid policy (3 problems):\n")
    assert "Extra inputs" not in str(info.value) and "Input should" not in str(info.value)


def test_a_bad_inherited_default_is_reported_once_not_per_model():
    text = "defaults:\n  retention: {keep: 0}\nmodels:\n  a: {}\n  b: {}\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml")
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("p.yaml:2: policy key 'defaults.retention.keep'")
