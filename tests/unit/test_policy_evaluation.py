"""The policy's `evaluation` block: the issue's YAML, inheritance key by key, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from config.policy import PolicyError, evaluation_dataset_problems, parse_policy
from regpilot.cli.main import main
from regpilot.core.gate import Direction

ISSUE_BLOCK = """
models:
  fraud-detector:
    evaluation:
      dataset: {dataset}
      targets: label
      model_type: classifier
      metrics:
        accuracy_score: {{min: 0.85}}
        f1_score: {{min: 0.80}}
      champion: {{metric: f1_score, min_improvement: 0.01}}
      logged_vs_measured: {{test_accuracy: accuracy_score}}
      max_gap: 0.05
      max_rows: 100000
      timeout_seconds: 300
"""


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    path = tmp_path / "fraud.csv"
    path.write_text("amount,label\n1.0,1\n")
    return path


def test_the_issue_block_parses_into_a_spec_and_measured_rules(golden: Path) -> None:
    block = parse_policy(ISSUE_BLOCK.format(dataset=golden)).for_model("fraud-detector").evaluation
    assert block is not None
    spec = block.spec()
    assert (spec.dataset, spec.targets, spec.model_type) == (str(golden), "label", "classifier")
    assert spec.metrics == {"accuracy_score": ("min", 0.85), "f1_score": ("min", 0.80)}
    assert (spec.max_rows, spec.timeout_seconds, spec.env_manager) == (100000, 300, "local")
    rules = block.measured_rules()
    assert (rules.champion_metric, rules.min_improvement) == ("f1_score", 0.01)
    assert rules.champion_direction is Direction.MIN  # higher is better
    assert rules.logged_vs_measured == {"test_accuracy": "accuracy_score"}


def test_inherited_key_by_key_and_null_drops_it(golden: Path) -> None:
    policy = parse_policy(
        f"""
defaults:
  evaluation:
    dataset: {golden}
    targets: label
    model_type: classifier
    metrics: {{accuracy_score: {{min: 0.8}}, f1_score: {{min: 0.7}}}}
models:
  slow:
    evaluation: {{timeout_seconds: 900, metrics: {{f1_score: null}}}}
  plain:
    evaluation: null
"""
    )
    slow = policy.for_model("slow").evaluation
    assert slow is not None and slow.timeout_seconds == 900 and slow.dataset == str(golden)
    assert set(slow.metrics) == {"accuracy_score"}
    assert policy.for_model("plain").evaluation is None
    assert policy.for_model("other").evaluation is not None


def test_evaluation_champion_wins_and_allows_auto_promote(golden: Path) -> None:
    policy = parse_policy(
        f"""
defaults:
  auto_promote: true
  champion: {{metric: test_accuracy}}
  evaluation:
    dataset: {golden}
    targets: label
    model_type: regressor
    champion: {{metric: mean_squared_error}}
"""
    )
    model = policy.for_model("m")
    assert model.gate_rules().champion is None  # the logged comparison steps aside
    rule = model.champion_rule()
    assert rule is not None and rule.metric == "mean_squared_error"
    assert rule.direction is Direction.MAX  # an error metric: lower is better
    only_measured = f"""
defaults:
  auto_promote: true
  evaluation: {{dataset: {golden}, targets: label, model_type: classifier,
               champion: {{metric: f1_score}}}}
"""
    assert parse_policy(only_measured).for_model("m").auto_promote


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("{targets: label, model_type: classifier}", "models.m.evaluation.dataset"),
        ("{dataset: x.csv, targets: label, model_type: ranker}", "models.m.evaluation.model_type"),
        (
            "{dataset: x.csv, targets: label, model_type: classifier, env_manager: conda}",
            "models.m.evaluation.env_manager",
        ),
        (
            "{dataset: x.csv, targets: label, model_type: classifier, timeout_seconds: 0}",
            "models.m.evaluation.timeout_seconds",
        ),
        (
            "{dataset: x.csv, targets: label, model_type: classifier,"
            " metrics: {f1: {min: 1, max: 2}}}",
            "models.m.evaluation.metrics.f1",
        ),
    ],
)
def test_a_bad_block_names_the_policy_key(block: str, field: str) -> None:
    with pytest.raises(PolicyError, match=field.replace(".", r"\.")):
        parse_policy(f"models:\n  m:\n    evaluation: {block}\n")


def test_policy_check_reads_local_headers_and_names_the_key(tmp_path: Path, golden: Path) -> None:
    policy = parse_policy(
        f"""
models:
  ok: {{evaluation: {{dataset: {golden}, targets: label, model_type: classifier}}}}
  nolabel: {{evaluation: {{dataset: {golden}, targets: is_fraud, model_type: classifier}}}}
  missing: {{evaluation: {{dataset: {tmp_path}/gone.csv, targets: label, model_type: classifier}}}}
  remote: {{evaluation: {{dataset: "s3://bucket/golden.csv", targets: y, model_type: classifier}}}}
""",
        "p.yaml",
    )
    problems = evaluation_dataset_problems(policy)
    assert len(problems) == 2
    assert "policy key 'models.nolabel.evaluation.targets'" in problems[0]
    assert "is_fraud" in problems[0]
    assert "policy key 'models.missing.evaluation.dataset'" in problems[1]
    assert "does not exist" in problems[1]

    file = tmp_path / "policy.yaml"
    file.write_text(
        f"models:\n  m: {{evaluation: {{dataset: {golden}, targets: y, model_type: classifier}}}}\n"
    )
    result = CliRunner().invoke(main, ["policy", "check", str(file)])
    assert result.exit_code == 1
    assert "models.m.evaluation.targets" in result.output
    assert "Traceback" not in result.output
