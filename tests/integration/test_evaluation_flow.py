"""The measured gate on the real stack: MLflow server, Redis, two real Celery worker processes.

A registry worker takes `regpilot.run_completed` on its queue and hands models whose policy has
an `evaluation` block to `regpilot.evaluate_model` on the evaluation queue, where a second
worker measures them (the engine's killable child) and applies the verdict. Models are scored
on a golden CSV written here; the misbehaving ones are the engine's toy models, armed only in
the evaluation worker's environment.

Shortened value: the sleeping model's policy sets `timeout_seconds: 25` (shipped default 300),
so the test does not wait five minutes; the engine kills the child the same way at any value.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from regpilot.core.tags import (
    EVALUATION_DATASET_DIGEST,
    EVALUATION_RUN_ID,
    FAILED,
    PASSED,
    VALIDATION_REPORT,
    VALIDATION_STATUS,
)
from regpilot.queue.evaluation import EVALUATION_EXPERIMENT
from tests.conftest import WorkerProcess
from tests.support import derive, wait_until

# One pytest process runs this module: its two workers start once (module fixture).
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("evaluation-flow")]

FEATURES = [f"f{i}" for i in range(6)]
VERDICT_WAIT = 240  # seconds: an evaluation starts a child that imports MLflow (2 shared cores)


@dataclass
class EvalStack:
    settings: Any
    names: dict[str, str]
    golden: Path
    registry_worker: WorkerProcess
    evaluation_worker: WorkerProcess
    celery: Any
    client: Any

    def run_completed(self, run_id: str, role: str) -> None:
        from regpilot.queue.names import RUN_COMPLETED

        self.celery.send_task(
            RUN_COMPLETED.name,
            args=RUN_COMPLETED.arguments(run_id, self.names[role]),
            kwargs={"source": "runs", "delivery_id": f"test-{uuid.uuid4().hex}"},
            queue=self.settings.task_queue,
        )

    def verdict(self, run_id: str, timeout: float = VERDICT_WAIT) -> dict[str, str]:
        def tagged() -> dict[str, str] | None:
            tags = dict(self.client.get_run(run_id).data.tags)
            return tags if VALIDATION_STATUS in tags else None

        return wait_until(tagged, timeout=timeout, interval=0.5, message=f"verdict of {run_id}")


def _frame(rows: int = 2000) -> Any:
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=6, n_informative=4, random_state=11, class_sep=1.2
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = y
    return frame


POLICY = """
defaults:
  metrics: {{}}
  retention: {{keep: 20}}
  evaluation:
    dataset: {golden}
    targets: label
    model_type: classifier
    metrics:
      accuracy_score: {{min: 0.75}}
    logged_vs_measured: {{test_accuracy: accuracy_score}}
    max_gap: 0.05
models:
  {honest}: {{}}
  {liar}: {{}}
  {broken}:
    evaluation: {{metrics: {{}}, logged_vs_measured: {{}}, timeout_seconds: 25}}
  {ranked}:
    auto_promote: true
    evaluation:
      logged_vs_measured: {{}}
      metrics: {{accuracy_score: {{min: 0.5}}}}
      champion: {{metric: accuracy_score, min_improvement: 0.01}}
  {plain}:
    evaluation: null
"""


@pytest.fixture(scope="module")
def eval_stack(
    settings: Any, mlflow_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EvalStack]:
    from mlflow import MlflowClient

    from regpilot.queue.celery_config import create_celery

    folder = tmp_path_factory.mktemp("evalflow")
    golden = folder / "golden.csv"
    _frame().to_csv(golden, index=False)
    suffix = uuid.uuid4().hex[:6]
    names = {r: f"evalflow-{r}-{suffix}" for r in ("honest", "liar", "broken", "ranked", "plain")}
    policy = folder / "policy.yaml"
    policy.write_text(POLICY.format(golden=golden, **names))
    base = derive(
        settings,
        policy_file=policy,
        # Queues of this module's own: the session worker (`--role all`) consumes the session's
        # task queue and `<task queue>-evaluate`, and must not take these tasks.
        task_queue=f"{settings.task_queue}-evalflow-registry",
        evaluation_queue=f"{settings.task_queue}-evalflow-evaluate",
    )
    registry_worker = WorkerProcess(base, folder / "registry-worker.log", role="registry")
    # The evaluation worker consumes only the evaluation queue (`--role evaluate`). The toy
    # models misbehave only where armed: there.
    os.environ["REGPILOT_TOY_ARMED"] = "1"
    try:
        evaluation_worker = WorkerProcess(base, folder / "evaluation-worker.log", role="evaluate")
    finally:
        del os.environ["REGPILOT_TOY_ARMED"]
    stack = EvalStack(
        base,
        names,
        golden,
        registry_worker,
        evaluation_worker,
        create_celery(base),
        MlflowClient(tracking_uri=mlflow_server),
    )
    yield stack
    evaluation_worker.stop()
    registry_worker.stop()


def log_run(
    metrics: dict[str, float], model: str = "good", *, features: list[str] | None = None
) -> str:
    """Log a run with `metrics` and a model: `good`, `noise` (trained on shuffled labels),
    `weak` (trained on `features` only) or one of the engine's toy models."""
    import cloudpickle
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from tests.evaluation import toy_models

    frame = _frame()
    x, y = frame[FEATURES], frame["label"]
    example = x.head(5)
    mlflow.set_experiment("evalflow-training")
    with mlflow.start_run() as run:
        mlflow.log_metrics(metrics)
        if model in ("good", "noise", "weak"):
            if model == "noise":
                estimator = LogisticRegression().fit(x, y.sample(frac=1, random_state=3).values)
            elif model == "weak":
                keep = features or ["f0"]
                estimator = make_pipeline(
                    make_column_transformer(("passthrough", keep), remainder="drop"),
                    LogisticRegression(),
                ).fit(x, y)
            else:
                estimator = LogisticRegression(max_iter=500).fit(x, y)
            mlflow.sklearn.log_model(
                estimator,
                name="model",
                input_example=example,
                signature=infer_signature(example, estimator.predict(example)),
                pip_requirements=["mlflow", "scikit-learn", "pandas"],
            )
        else:
            cloudpickle.register_pickle_by_value(toy_models)
            toy = {
                "cannot_load": toy_models.CannotLoad(),
                "predict_raises": toy_models.PredictRaises(),
                "sleeps": toy_models.Sleeps(),
            }[model]
            mlflow.pyfunc.log_model(
                name="model",
                python_model=toy,
                input_example=example,
                signature=infer_signature(example, y.head(5).to_numpy()),
                pip_requirements=[],
            )
        return str(run.info.run_id)


def _checks(tags: dict[str, str]) -> dict[str, list[Any]]:
    return {row[0]: row for row in json.loads(tags[VALIDATION_REPORT])["checks"]}


def test_an_honest_good_model_passes_on_measured_metrics(eval_stack: EvalStack) -> None:
    run_id = log_run({"test_accuracy": 0.9})
    eval_stack.run_completed(run_id, "honest")

    tags = eval_stack.verdict(run_id)

    assert tags[VALIDATION_STATUS] == PASSED, tags[VALIDATION_REPORT]
    checks = _checks(tags)
    measured = checks["accuracy_score"][4]["measured"]
    assert measured >= 0.75
    assert checks["honesty:test_accuracy"][4] == {"measured": measured, "logged": 0.9}
    [version] = eval_stack.client.search_model_versions(f"name='{eval_stack.names['honest']}'")
    assert version.tags[EVALUATION_RUN_ID] == tags[EVALUATION_RUN_ID]
    assert version.tags[EVALUATION_DATASET_DIGEST] == tags[EVALUATION_DATASET_DIGEST]
    evaluation = eval_stack.client.get_run(tags[EVALUATION_RUN_ID])
    assert evaluation.data.metrics["accuracy_score"] == pytest.approx(measured, abs=1e-5)


def test_a_model_whose_logged_accuracy_lies_fails_unregistered(eval_stack: EvalStack) -> None:
    run_id = log_run({"test_accuracy": 0.99}, "noise")
    eval_stack.run_completed(run_id, "liar")

    tags = eval_stack.verdict(run_id)

    assert tags[VALIDATION_STATUS] == FAILED
    honesty = _checks(tags)["honesty:test_accuracy"]
    assert honesty[3] == FAILED and honesty[4]["logged"] == 0.99
    assert honesty[4]["measured"] < 0.7
    assert "overstates by" in tags[VALIDATION_REPORT]
    assert tags[EVALUATION_RUN_ID]  # the run keeps the evaluation that caught it
    assert eval_stack.client.search_model_versions(f"name='{eval_stack.names['liar']}'") == []


@pytest.mark.parametrize(
    ("toy", "reason"),
    [
        ("cannot_load", "weights file is corrupt"),
        ("predict_raises", "feature f3 has an unexpected scale"),
        ("sleeps", "evaluation timed out after 25s"),
    ],
)
def test_a_model_that_cannot_be_measured_is_failed_with_its_reason(
    eval_stack: EvalStack, toy: str, reason: str
) -> None:
    run_id = log_run({"test_accuracy": 0.9}, toy)
    eval_stack.run_completed(run_id, "broken")

    tags = eval_stack.verdict(run_id)

    assert tags[VALIDATION_STATUS] == FAILED
    assert reason in tags[VALIDATION_REPORT]
    # Not a dead letter, not retried: the worker is alive and measures the next model.
    assert eval_stack.evaluation_worker.process.poll() is None
    assert "task.dead_letter" not in eval_stack.evaluation_worker.log_path.read_text()


def test_a_slow_evaluation_does_not_delay_another_models_registry_event(
    eval_stack: EvalStack,
) -> None:
    slow = log_run({"test_accuracy": 0.9}, "sleeps")
    fast = log_run({"test_accuracy": 0.9})
    eval_stack.run_completed(slow, "broken")
    time.sleep(1)  # the slow one is first in line
    started = time.monotonic()
    eval_stack.run_completed(fast, "plain")

    eval_stack.verdict(fast, timeout=60)
    fast_seconds = time.monotonic() - started
    slow_pending = VALIDATION_STATUS not in eval_stack.client.get_run(slow).data.tags
    eval_stack.verdict(slow)
    slow_seconds = time.monotonic() - started

    print(f"registry verdict {fast_seconds:.1f}s, slow evaluation {slow_seconds:.1f}s")
    assert slow_pending, "the plain model waited for the slow evaluation"
    assert fast_seconds < slow_seconds


def _evaluation_runs(stack: EvalStack, role: str) -> list[Any]:
    experiment = stack.client.get_experiment_by_name(EVALUATION_EXPERIMENT)
    return list(
        stack.client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.regpilot_model_name = '{stack.names[role]}'",
        )
    )


def test_champion_and_challengers_are_compared_on_the_same_rows(eval_stack: EvalStack) -> None:
    name = eval_stack.names["ranked"]
    first = log_run({"test_accuracy": 0.7}, "weak", features=["f0", "f1"])
    eval_stack.run_completed(first, "ranked")
    assert eval_stack.verdict(first)[VALIDATION_STATUS] == PASSED
    wait_until(
        lambda: eval_stack.client.get_registered_model(name).aliases.get("champion") == "1",
        message="first champion",
    )

    # Worse on the golden rows, better on paper: not promoted.
    worse = log_run({"test_accuracy": 0.99}, "weak", features=["f5"])
    eval_stack.run_completed(worse, "ranked")
    tags = eval_stack.verdict(worse)
    assert tags[VALIDATION_STATUS] == FAILED
    lost = _checks(tags)["champion:accuracy_score"]
    assert lost[4]["measured"] < lost[4]["champion"]
    assert "loses to champion by" in tags[VALIDATION_REPORT]

    better = log_run({"test_accuracy": 0.5}, "good")
    eval_stack.run_completed(better, "ranked")
    assert eval_stack.verdict(better)[VALIDATION_STATUS] == PASSED
    wait_until(
        lambda: eval_stack.client.get_registered_model(name).aliases.get("champion") == "2",
        message="better challenger promoted",
    )

    # Three candidates, three evaluations: the champion's own (from when it was a candidate)
    # was reused for both comparisons, never recomputed.
    runs = _evaluation_runs(eval_stack, "ranked")
    assert len(runs) == 3, [r.data.tags.get("regpilot_subject") for r in runs]
    assert not [r for r in runs if r.data.tags.get("regpilot_subject", "").startswith("v")]


def test_the_cli_measures_in_process_and_shows_logged_beside_measured(
    eval_stack: EvalStack,
) -> None:
    from click.testing import CliRunner

    from config.settings import settings_environment
    from regpilot.cli.main import main

    env = settings_environment(eval_stack.settings)
    liar = log_run({"test_accuracy": 0.99}, "noise")
    result = CliRunner().invoke(
        main, ["validate", "--run-id", liar, "--model-name", eval_stack.names["liar"]], env=env
    )
    assert result.exit_code == 1, result.output
    assert "measured" in result.output and "logged" in result.output
    assert "honesty:test_accuracy" in result.output and "overstates by" in result.output
    assert "Traceback" not in result.output

    honest = log_run({"test_accuracy": 0.9})
    name = eval_stack.names["honest"]
    result = CliRunner().invoke(
        main, ["register-model", "--run-id", honest, "--model-name", name, "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["status"] == PASSED and outcome["registered"]
    assert outcome["evaluation"]["evaluation_run_id"]
    result = CliRunner().invoke(
        main, ["details", name, "--version", str(outcome["version"]), "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["measured"]["accuracy_score"] >= 0.75
