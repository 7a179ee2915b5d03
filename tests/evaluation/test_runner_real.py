"""evaluate_model against a real MLflow server, real sklearn models and misbehaving models."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from regpilot.evaluation import (
    EvaluationInfrastructureError,
    EvaluationResult,
    EvaluationSpec,
    evaluate_model,
    honesty_checks,
    measured_checks,
)
from regpilot.evaluation.dataset import dataset_digest, sample_rows
from tests.evaluation.conftest import Data
from tests.evaluation.toy_models import SLEEP_MARKER

EXPERIMENT = "regpilot-evaluations-test"
pytestmark = pytest.mark.usefixtures("forkserver_ready")
ARMED = {"REGPILOT_TOY_ARMED": "1"}
BINARY_METRICS = {
    "accuracy_score",
    "precision_score",
    "recall_score",
    "f1_score",
    "roc_auc",
    "precision_recall_auc",
    "log_loss",
    "true_positives",
    "true_negatives",
    "false_positives",
    "false_negatives",
    "example_count",
    "score",
}
REGRESSOR_METRICS = {
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "max_error",
    "r2_score",
    "mean_on_target",
    "sum_on_target",
    "example_count",
    "score",
}


def classifier_spec(data: Data, **changes: Any) -> EvaluationSpec:
    values: dict[str, Any] = {
        "dataset": str(data.csv),
        "targets": "label",
        "model_type": "classifier",
        "metrics": {"accuracy_score": ("min", 0.85), "log_loss": ("max", 0.5)},
        "timeout_seconds": 120,
        **changes,
    }
    return EvaluationSpec(**values)


def run_of(tracking_uri: str, run_id: str | None) -> Any:
    from mlflow.tracking import MlflowClient

    assert run_id, "no evaluation run id"
    return MlflowClient(tracking_uri=tracking_uri).get_run(run_id)


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def processes_with(marker: str, pid_file: Path) -> list[int]:
    """Return the live processes with `marker` in their command line that this test started.

    Only those whose environment names the test's own `pid_file`: an evaluation child and the
    model's helper inherit it. Other pytest processes may run evaluations of their own meanwhile.
    """
    found = []
    owner = f"REGPILOT_TOY_PIDFILE={pid_file}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in cmdline and owner in environ and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def good_result(eval_tracking_uri: str, data: Data, logged: dict[str, str]) -> EvaluationResult:
    return evaluate_model(
        logged["good"],
        classifier_spec(data),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        run_tags={"regpilot_event": "evt-123", "regpilot_role": "candidate"},
    )


def test_good_model_is_measured_and_the_run_shows_it(
    good_result: EvaluationResult, eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    result = good_result
    assert result.ok, result
    assert result.failure is None and result.failure_kind is None
    assert result.loaded is True and result.predicted_example is True
    assert set(result.measured) >= BINARY_METRICS, sorted(result.measured)
    assert result.measured["accuracy_score"] > 0.85
    assert result.measured["example_count"] == 10_000
    assert result.dataset_rows == 10_000
    # The digest the child computed equals the one computed here, in another process.
    assert result.dataset_digest == dataset_digest(data.frame)
    assert [s.name for s in result.steps] == [
        "connect",
        "dataset",
        "load",
        "predict_example",
        "signature",
        "evaluate",
        "log",
    ]
    for key in ("startup", "dataset", "load", "predict", "metrics", "logging", "total"):
        assert result.timings[key] > 0, key
    assert result.timings["total"] >= result.timings["metrics"] + result.timings["startup"]
    assert all(
        c.passed for c in measured_checks(result.measured, {"accuracy_score": ("min", 0.85)})
    )

    run = run_of(eval_tracking_uri, result.evaluation_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["regpilot_evaluated_model"] == logged["good"]
    assert run.data.tags["regpilot_event"] == "evt-123"
    assert run.data.tags["regpilot_status"] == "measured"
    assert run.data.tags["regpilot_dataset_digest"] == result.dataset_digest
    for name in ("accuracy_score", "f1_score", "roc_auc"):
        assert run.data.metrics[name] == pytest.approx(result.measured[name])
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=eval_tracking_uri)
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "regpilot_evaluation.json" in artifacts
    assert "confusion_matrix.png" in artifacts  # the evaluator's own plots are there too
    import mlflow.artifacts

    logged_json = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/regpilot_evaluation.json")
    from_run = EvaluationResult.from_dict(logged_json)
    assert from_run.measured == result.measured
    assert from_run.evaluation_run_id == result.evaluation_run_id
    # Round trip through JSON (what a cache stores).
    assert EvaluationResult.from_dict(json.loads(json.dumps(result.as_dict()))) == result


def test_self_reported_metric_is_checked_against_the_measurement(
    good_result: EvaluationResult, eval_tracking_uri: str, logged: dict[str, str]
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=eval_tracking_uri)
    model_run = client.get_logged_model(logged["good"].split("/")[-1]).source_run_id
    claimed = client.get_run(model_run).data.metrics
    (check,) = honesty_checks(
        claimed, good_result.measured, {"val_accuracy": "accuracy_score"}, 0.02
    )
    assert not check.passed
    gap = claimed["val_accuracy"] - good_result.measured["accuracy_score"]
    assert check.detail.startswith(f"overstates by {gap:.4g}")


def test_forkserver_mode_measures_the_same(
    good_result: EvaluationResult, eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    result = evaluate_model(
        logged["good"],
        classifier_spec(data),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        start_method="forkserver",
    )
    assert result.ok, result
    assert result.measured == good_result.measured
    assert result.dataset_digest == good_result.dataset_digest
    assert result.evaluation_run_id != good_result.evaluation_run_id
    # A forked child starts warm: no interpreter start, no `import mlflow`.
    assert result.timings["startup"] < min(1.0, good_result.timings["startup"])


def test_remote_parquet_dataset_is_downloaded_and_capped(
    eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    import mlflow

    mlflow.set_tracking_uri(eval_tracking_uri)
    mlflow.set_experiment("eval-test-datasets")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(data.parquet), artifact_path="holdout")
    uri = f"runs:/{run.info.run_id}/holdout/{data.parquet.name}"
    result = evaluate_model(
        logged["good"],
        classifier_spec(data, dataset=uri, max_rows=2_000),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        start_method="forkserver",
    )
    assert result.ok, result
    assert result.dataset_rows == 2_000
    assert result.measured["example_count"] == 2_000
    assert result.dataset_digest == dataset_digest(sample_rows(data.frame, 2_000))
    assert "2000 of 10000 rows" in result.steps[1].detail


def test_output_that_contradicts_the_signature_fails_its_step(
    eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    result = evaluate_model(
        logged["lying_signature"],
        classifier_spec(data, dataset=str(data.small_csv)),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        start_method="forkserver",
    )
    assert result.failure is None  # it was measured...
    assert result.measured["accuracy_score"] > 0.85
    assert result.predicted_example is False  # ...but its output does not match its signature
    assert not result.ok
    (step,) = [s for s in result.steps if s.name == "signature"]
    assert not step.passed
    assert "1 output columns, signature has 2" in step.detail
    (load,) = [s for s in result.steps if s.name == "load"]
    assert "requirements differ from this environment: scikit-learn (current: " in load.detail
    assert "required: scikit-learn==1.0.2)" in load.detail


def test_model_that_cannot_load_fails_with_a_reason(
    eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    result = evaluate_model(
        logged["cannot_load"],
        classifier_spec(data, dataset=str(data.small_csv)),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        child_env=ARMED,
        start_method="forkserver",
    )
    assert result.failure == "model failed to load: RuntimeError: weights file is corrupt"
    assert result.failure_kind == "model"
    assert result.loaded is False and result.measured == {}
    run = run_of(eval_tracking_uri, result.evaluation_run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["regpilot_status"] == "failed"
    assert "weights file is corrupt" in run.data.tags["regpilot_failure"]


def test_model_whose_predict_raises_fails_on_its_own_example(
    eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    result = evaluate_model(
        logged["predict_raises"],
        classifier_spec(data, dataset=str(data.small_csv)),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        child_env=ARMED,
        start_method="forkserver",
    )
    assert result.failure == (
        "predict on the logged input example raised ValueError: feature f3 has an unexpected scale"
    )
    assert result.failure_kind == "model"
    assert result.loaded is True and result.predicted_example is False
    assert result.measured == {}


def test_predict_raising_inside_evaluate_is_a_model_failure_not_infrastructure(
    eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    result = evaluate_model(
        logged["predict_raises"],
        classifier_spec(data, dataset=str(data.small_csv)),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        child_env=ARMED,
        logged_example_check=False,
        start_method="forkserver",
    )
    assert result.predicted_example is None
    assert result.failure_kind == "model"
    assert result.failure is not None
    assert result.failure.startswith("mlflow.models.evaluate raised ValueError")
    assert "feature f3 has an unexpected scale" in result.failure


def _gone(*pids: int) -> bool:
    deadline = time.monotonic() + 3
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(pid) for pid in pids)


def test_hanging_model_is_killed_with_its_whole_process_group(
    eval_tracking_uri: str, data: Data, logged: dict[str, str], tmp_path: Path
) -> None:
    """Forkserver child, timeout 3 s: the model sleeps 60 s in predict after starting `sleep`."""
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = evaluate_model(
        logged["sleeps"],
        classifier_spec(data, dataset=str(data.tiny_csv), timeout_seconds=3),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        child_env={**ARMED, "REGPILOT_TOY_PIDFILE": str(pid_file)},
        start_method="forkserver",
    )
    assert time.monotonic() - started < 3 + 5
    assert result.failure == "evaluation timed out after 3s"
    assert result.failure_kind == "timeout" and result.measured == {}
    assert re.search(r"killed with SIGKILL during \w+ after", result.steps[0].detail)
    # Normally killed in predict. On a very busy machine (load average 10+ on 2 cores) the 3 s can
    # run out before the model was even loaded; then there is no model pid to look for.
    # test_units.test_forkserver_runner_kills_the_group_on_deadline covers that without MLflow.
    if pid_file.exists():
        # The model was loaded (it wrote its pids); neither it nor the `sleep` it started lives.
        child_pid, helper_pid = (int(p) for p in pid_file.read_text().split())
        assert _gone(child_pid), "evaluation child still running"
        assert _gone(helper_pid), "the model's own subprocess still running"
    assert processes_with(SLEEP_MARKER, pid_file) == []
    run = run_of(eval_tracking_uri, result.evaluation_run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["regpilot_failure"].startswith("evaluation timed out after 3s during ")


def test_hanging_model_in_a_subprocess_child_is_killed_too(
    eval_tracking_uri: str, data: Data, logged: dict[str, str], tmp_path: Path
) -> None:
    """Subprocess child: the budget includes interpreter start and `import mlflow`."""
    pid_file = tmp_path / "pids"
    result = evaluate_model(
        logged["sleeps"],
        classifier_spec(data, dataset=str(data.tiny_csv), timeout_seconds=10),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        child_env={**ARMED, "REGPILOT_TOY_PIDFILE": str(pid_file)},
    )
    assert result.failure == "evaluation timed out after 10s"
    assert processes_with("-m regpilot.evaluation.child", pid_file) == []
    if pid_file.exists():  # the model was loaded before the deadline (not on a very busy machine)
        assert _gone(*(int(p) for p in pid_file.read_text().split()))
    assert processes_with(SLEEP_MARKER, pid_file) == []


def test_child_that_segfaults_gives_a_failed_result(
    eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    result = evaluate_model(
        logged["crashes"],
        classifier_spec(data, dataset=str(data.small_csv)),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        child_env=ARMED,
    )
    assert result.failure == "evaluation process crashed: killed by SIGSEGV during predict_example"
    assert result.failure_kind == "crash"
    assert result.loaded is True  # it got as far as predicting
    assert run_of(eval_tracking_uri, result.evaluation_run_id).info.status == "FAILED"


def test_regressor_is_measured_with_regression_metrics(
    eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    spec = EvaluationSpec(
        dataset=str(data.regression_csv),
        targets="target",
        model_type="regressor",
        metrics={"r2_score": ("min", 0.9), "root_mean_squared_error": ("max", 10.0)},
        timeout_seconds=120,
    )
    result = evaluate_model(
        logged["regressor"],
        spec,
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        start_method="forkserver",
    )
    assert result.ok, result
    assert set(result.measured) >= REGRESSOR_METRICS, sorted(result.measured)
    assert result.measured["r2_score"] > 0.9
    assert result.measured["root_mean_squared_error"] == pytest.approx(
        result.measured["mean_squared_error"] ** 0.5
    )
    checks = measured_checks(result.measured, spec.metrics)
    assert [c.passed for c in checks] == [True, True]


def test_unusable_dataset_fails_as_a_dataset_problem(
    eval_tracking_uri: str, data: Data, logged: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.csv"
    result = evaluate_model(
        logged["good"],
        classifier_spec(data, dataset=str(missing)),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        start_method="forkserver",
    )
    assert result.failure_kind == "dataset"
    assert result.failure == f"dataset {str(missing)!r} does not exist"
    assert result.loaded is False  # the model is not blamed, nor even loaded
    one_class = tmp_path / "one_class.csv"
    data.frame[data.frame["label"] == 1].head(100).to_csv(one_class, index=False)
    result = evaluate_model(
        logged["good"],
        classifier_spec(data, dataset=str(one_class)),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        start_method="forkserver",
    )
    assert result.failure_kind == "dataset"
    assert result.failure is not None
    assert "needs at least two distinct 'label' values in the rows used, found 1" in result.failure


def test_unreachable_tracking_server_is_an_infrastructure_error(data: Data) -> None:
    from regpilot.cli.stack import free_port

    started = time.monotonic()
    with pytest.raises(EvaluationInfrastructureError, match="unreachable"):
        evaluate_model(
            "models:/m-0123",
            classifier_spec(data),
            tracking_uri=f"http://127.0.0.1:{free_port()}",
        )
    assert time.monotonic() - started < 10


class _HealthyButBroken(BaseHTTPRequestHandler):
    """Answers /health like MLflow, and 503 to every API call."""

    def do_GET(self) -> None:
        if self.path == "/health":
            self._answer(200, b"OK")
        else:
            self._answer(503, b"upstream database is down")

    def do_POST(self) -> None:
        self._answer(503, b"upstream database is down")

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def broken_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HealthyButBroken)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tracking_server_failing_mid_evaluation_is_an_infrastructure_error(
    broken_server: str, data: Data
) -> None:
    # Other code of this process (the registry adapter) may have set it: compare, do not assume.
    before = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    with pytest.raises(EvaluationInfrastructureError, match="connect") as raised:
        evaluate_model(
            "models:/m-0123",
            classifier_spec(data),
            tracking_uri=broken_server,
            child_env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
            start_method="forkserver",
        )
    assert "503" in str(raised.value) or "API request" in str(raised.value)
    assert os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") == before  # parent env untouched


@pytest.mark.skipif(shutil.which("uv") is not None, reason="uv is installed: it would build an env")
def test_uv_env_manager_without_uv_is_a_failed_result_not_an_exception(
    eval_tracking_uri: str, data: Data, logged: dict[str, str]
) -> None:
    result = evaluate_model(
        logged["good"],
        classifier_spec(data, dataset=str(data.tiny_csv), env_manager="uv", timeout_seconds=60),
        tracking_uri=eval_tracking_uri,
        experiment_name=EXPERIMENT,
        start_method="forkserver",
    )
    assert result.failure_kind == "model" and not result.loaded
    assert result.failure is not None
    assert result.failure.startswith("model could not be served from a uv environment")
