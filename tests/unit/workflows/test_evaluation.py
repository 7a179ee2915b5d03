"""The measured gate through the workflows, on the fake registry with a fake evaluator.

The evaluator is a plain function standing in for the engine (which the integration tests run
for real): it returns what a model "measures" and counts how often each model was evaluated.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from regpilot.core.tags import (
    EVALUATION_DATASET_DIGEST,
    EVALUATION_RUN_ID,
    FAILED,
    PASSED,
    VALIDATION_REPORT,
    VALIDATION_STATUS,
)
from regpilot.evaluation import EvaluationResult, EvaluationSpec, StepResult
from regpilot.workflows.evaluation import NoEvaluator
from regpilot.workflows.run_completed import QUEUED, process_run_completed
from regpilot.workflows.version_created import process_version_created
from tests.fakes import FakeRegistry, FakeStore
from tests.unit.workflows.conftest import PASSING, MakeContext

DIGEST = "0123456789abcdef"


class FakeEvaluator:
    """Measure models from a table: model URI -> metrics, or a failure line."""

    def __init__(self) -> None:
        self.measures: dict[str, dict[str, float]] = {}
        self.failures: dict[str, tuple[str, str]] = {}
        self.calls: Counter[str] = Counter()

    def __call__(
        self, model_uri: str, spec: EvaluationSpec, run_tags: dict[str, str]
    ) -> EvaluationResult:
        self.calls[model_uri] += 1
        run_id = f"eval-{sum(self.calls.values())}"
        if model_uri in self.failures:
            kind, reason = self.failures[model_uri]
            return EvaluationResult.failed(
                model_uri,
                reason,
                kind,  # type: ignore[arg-type]
                steps=[StepResult("load", kind != "model", reason)],
                evaluation_run_id=run_id,
            )
        return EvaluationResult(
            model_uri=model_uri,
            loaded=True,
            predicted_example=True,
            measured=dict(self.measures.get(model_uri, {})),
            steps=[StepResult("load", True, "loaded"), StepResult("evaluate", True, "ok")],
            evaluation_run_id=run_id,
            dataset_digest=DIGEST,
            timings={"total": 1.0},
            failure=None,
        )


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    path = tmp_path / "golden.csv"
    path.write_text("f0,label\n1,1\n-1,0\n")
    return path


def policy_yaml(golden: Path, extra: str = "", model_extra: str = "") -> str:
    return f"""
defaults:
  metrics: {{}}
  evaluation:
    dataset: {golden}
    targets: label
    model_type: classifier
    metrics:
      accuracy_score: {{min: 0.8}}
    logged_vs_measured: {{test_accuracy: accuracy_score}}
    max_gap: 0.05
{extra}
models:
  fraud:
{model_extra or "    retention: {keep: 10}"}
"""


def with_evaluator(
    make_ctx: MakeContext, registry: FakeRegistry, policy: str
) -> tuple[FakeEvaluator, object]:
    ctx = make_ctx(registry, policy)
    evaluator = FakeEvaluator()
    ctx.evaluate = evaluator
    return evaluator, ctx


def test_honest_good_model_passes_with_measured_numbers_and_evaluation_tags(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run({"test_accuracy": 0.93}, model_name="fraud")
    evaluator, ctx = with_evaluator(make_ctx, registry, policy_yaml(golden))
    evaluator.measures[f"models:/m-{run.run_id}"] = {"accuracy_score": 0.92}

    [outcome] = process_run_completed(ctx, run.run_id, None)  # type: ignore[arg-type]

    assert outcome.status == PASSED
    version = registry.get_version("fraud", outcome.version or 0)
    assert version.tags[EVALUATION_RUN_ID] == "eval-1"
    assert version.tags[EVALUATION_DATASET_DIGEST] == DIGEST
    assert registry.runs[run.run_id].tags[EVALUATION_RUN_ID] == "eval-1"
    report = json.loads(version.tags[VALIDATION_REPORT])
    assert ["accuracy_score", ">= 0.8", "0.92", PASSED, {"measured": 0.92}] in report["checks"]


def test_a_model_whose_logged_metric_lies_fails_and_the_report_says_by_how_much(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run({"test_accuracy": 0.99}, model_name="fraud")
    evaluator, ctx = with_evaluator(make_ctx, registry, policy_yaml(golden))
    evaluator.measures[f"models:/m-{run.run_id}"] = {"accuracy_score": 0.81}

    [outcome] = process_run_completed(ctx, run.run_id, None)  # type: ignore[arg-type]

    assert outcome.status == FAILED
    assert outcome.version is None  # never registered
    tags = registry.runs[run.run_id].tags
    assert tags[VALIDATION_STATUS] == FAILED
    assert tags[EVALUATION_RUN_ID] == "eval-1"  # the run keeps its evaluation run
    report = json.loads(tags[VALIDATION_REPORT])
    first = report["checks"][0]  # failing checks first
    assert first[0] == "honesty:test_accuracy"
    assert first[4] == {"measured": 0.81, "logged": 0.99}
    assert any("overstates by 0.18" in reason for reason in report["reasons"])


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("model", "model failed to load: RuntimeError: weights file is corrupt"),
        ("timeout", "evaluation timed out after 300s"),
    ],
)
def test_a_model_that_cannot_be_measured_is_a_recorded_failed_verdict(
    make_ctx: MakeContext, golden: Path, kind: str, reason: str
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run({"test_accuracy": 0.9}, model_name="fraud")
    evaluator, ctx = with_evaluator(make_ctx, registry, policy_yaml(golden))
    evaluator.failures[f"models:/m-{run.run_id}"] = (kind, reason)

    [outcome] = process_run_completed(ctx, run.run_id, None)  # type: ignore[arg-type]

    assert outcome.status == FAILED
    assert reason in registry.runs[run.run_id].tags[VALIDATION_REPORT]
    store = ctx.store  # type: ignore[attr-defined]
    assert isinstance(store, FakeStore)
    [gate] = [d for d in store.history["fraud"] if d["kind"] == "gate"]
    assert gate["verdict"] == FAILED
    assert gate["evaluation"]["failure"] == reason


def test_both_gates_apply_logged_metrics_and_measured_metrics(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run({"test_accuracy": 0.5}, model_name="fraud")
    policy = policy_yaml(golden).replace("metrics: {}", "metrics: {test_accuracy: {min: 0.8}}", 1)
    evaluator, ctx = with_evaluator(make_ctx, registry, policy)
    evaluator.measures[f"models:/m-{run.run_id}"] = {"accuracy_score": 0.9}

    [outcome] = process_run_completed(ctx, run.run_id, None)  # type: ignore[arg-type]

    failed = [c.name for c in outcome.verdict.failures]
    assert failed == ["test_accuracy"]  # measured passed, logged floor failed


CHAMPION = """
    champion: {metric: accuracy_score, min_improvement: 0.01}
  auto_promote: true
  champion: {metric: test_accuracy, min_improvement: 0.0}
"""


def _champion_setup(
    make_ctx: MakeContext, golden: Path
) -> tuple[FakeRegistry, FakeEvaluator, object, str]:
    registry = FakeRegistry.oss()
    evaluator, ctx = with_evaluator(make_ctx, registry, policy_yaml(golden, CHAMPION))
    first = registry.add_run({"test_accuracy": 0.8}, model_name="fraud")
    evaluator.measures[f"models:/m-{first.run_id}"] = {"accuracy_score": 0.85}
    [outcome] = process_run_completed(ctx, first.run_id, None)  # type: ignore[arg-type]
    assert outcome.status == PASSED and "champion" in outcome.aliases
    return registry, evaluator, ctx, first.run_id


def test_a_worse_challenger_with_better_self_reported_numbers_is_not_promoted(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry, evaluator, ctx, _ = _champion_setup(make_ctx, golden)
    worse = registry.add_run({"test_accuracy": 0.84}, model_name="fraud")  # logs more
    evaluator.measures[f"models:/m-{worse.run_id}"] = {"accuracy_score": 0.83}

    [outcome] = process_run_completed(ctx, worse.run_id, None)  # type: ignore[arg-type]

    assert outcome.status == FAILED
    [check] = [c for c in outcome.verdict.failures if c.name == "champion:accuracy_score"]
    assert check.reason.startswith("loses to champion by 0.02")
    assert (check.measured, check.champion) == (0.83, 0.85)
    assert registry.get_registered_model("fraud").aliases["champion"] == 1


def test_a_better_challenger_is_promoted_and_the_champion_is_measured_once_per_digest(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry, evaluator, ctx, _ = _champion_setup(make_ctx, golden)
    for accuracy in (0.86, 0.87):  # each beats the champion by 0.01 and takes its place
        run = registry.add_run({"test_accuracy": 0.5}, model_name="fraud")
        evaluator.measures[f"models:/m-{run.run_id}"] = {"accuracy_score": accuracy}
        process_run_completed(ctx, run.run_id, None)  # type: ignore[arg-type]
    better = registry.add_run({"test_accuracy": 0.5}, model_name="fraud")
    evaluator.measures[f"models:/m-{better.run_id}"] = {"accuracy_score": 0.95}

    [outcome] = process_run_completed(ctx, better.run_id, None)  # type: ignore[arg-type]

    assert outcome.status == PASSED
    assert "champion" in outcome.aliases
    assert registry.get_registered_model("fraud").aliases["champion"] == outcome.version
    # The champion (v1) was measured when it was a candidate and never again.
    assert evaluator.calls["models:/fraud/1"] == 0
    assert all(count == 1 for count in evaluator.calls.values())


def test_a_redelivered_event_reuses_the_cached_evaluation(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run({"test_accuracy": 0.9}, model_name="fraud")
    evaluator, ctx = with_evaluator(make_ctx, registry, policy_yaml(golden))
    evaluator.measures[f"models:/m-{run.run_id}"] = {"accuracy_score": 0.9}
    process_run_completed(ctx, run.run_id, None)  # type: ignore[arg-type]
    ctx.measured.clear()  # type: ignore[attr-defined]  # a new task run

    [again] = process_run_completed(ctx, run.run_id, None)  # type: ignore[arg-type]

    assert again.status == PASSED and not again.created
    assert sum(evaluator.calls.values()) == 1


def test_the_registry_path_queues_the_evaluation_and_judges_nothing(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run({"test_accuracy": 0.9}, model_name="fraud")
    ctx = make_ctx(registry, policy_yaml(golden))
    queued: list[tuple[object, ...]] = []
    ctx.queue_evaluation = lambda *args: queued.append(args)

    [outcome] = process_run_completed(ctx, run.run_id, None)

    assert outcome.status == QUEUED
    assert queued == [("fraud", run.run_id, f"models:/m-{run.run_id}", None)]
    assert VALIDATION_STATUS not in registry.runs[run.run_id].tags
    assert registry.calls["create_version"] == 0


def test_without_evaluator_or_queue_an_evaluation_block_is_a_clear_error(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run({"test_accuracy": 0.9}, model_name="fraud")
    with pytest.raises(NoEvaluator, match="fraud"):
        process_run_completed(make_ctx(registry, policy_yaml(golden)), run.run_id, None)


def test_a_model_without_an_evaluation_block_keeps_the_registry_path(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run(PASSING, model_name="plain")
    policy = policy_yaml(golden, model_extra="    evaluation: null")
    policy = policy.replace("  fraud:", "  plain:")
    ctx = make_ctx(registry, policy)

    [outcome] = process_run_completed(ctx, run.run_id, None)

    assert outcome.status == PASSED  # no evaluator needed, nothing queued


def test_a_version_registered_by_hand_is_measured_and_tagged(
    make_ctx: MakeContext, golden: Path
) -> None:
    registry = FakeRegistry.oss()
    run = registry.add_run({"test_accuracy": 0.99}, model_name="fraud")
    version = registry.create_version("fraud", f"models:/m-{run.run_id}", run.run_id, {}, None)
    evaluator, ctx = with_evaluator(make_ctx, registry, policy_yaml(golden))
    evaluator.measures["models:/fraud/1"] = {"accuracy_score": 0.5}

    outcome = process_version_created(ctx, "fraud", version.version)  # type: ignore[arg-type]

    assert outcome.status == FAILED
    tags = registry.get_version("fraud", 1).tags
    assert tags[VALIDATION_STATUS] == FAILED
    assert tags[EVALUATION_RUN_ID] == "eval-1"
    assert "accuracy_score" in tags[VALIDATION_REPORT]


def test_compare_and_backtest_show_measured_numbers_from_the_evaluation_run(
    make_ctx: MakeContext, golden: Path
) -> None:
    from regpilot.workflows.governance import backtest, compare_versions

    registry = FakeRegistry.oss()
    evaluator, ctx = with_evaluator(make_ctx, registry, policy_yaml(golden))
    for logged, measured in ((0.9, 0.88), (0.91, 0.9)):
        run = registry.add_run({"test_accuracy": logged}, model_name="fraud")
        evaluator.measures[f"models:/m-{run.run_id}"] = {"accuracy_score": measured}
        [outcome] = process_run_completed(ctx, run.run_id, None)  # type: ignore[arg-type]
        # The evaluation run, as the engine leaves it in MLflow: its measured metrics.
        evaluation = registry.add_run({"accuracy_score": measured}, models=[])
        tags = {EVALUATION_RUN_ID: evaluation.run_id}
        registry.set_version_tags("fraud", outcome.version or 0, tags)

    comparison = compare_versions(ctx, "fraud", 1, 2)  # type: ignore[arg-type]
    rows = {row.metric: (row.old, row.new) for row in comparison.metrics}
    assert rows["measured:accuracy_score"] == (0.88, 0.9)
    assert rows["test_accuracy"] == (0.9, 0.91)

    by_version = {row.version: row for row in backtest(ctx, "fraud")}  # type: ignore[arg-type]
    measured = [c for c in by_version[1].verdict.checks if c.name == "accuracy_score"]
    assert measured and measured[0].measured == 0.88 and measured[0].passed
    assert sum(evaluator.calls.values()) == 2  # a backtest never loads a model
