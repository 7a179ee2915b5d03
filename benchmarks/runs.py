"""Finished training runs with a logged model, made fast through MLflow's REST API.

What `mlflow.sklearn.log_model` leaves behind, as far as regpilot reads it: a finished run with
metrics and params, an MLflow 3 logged model linked to the run as an output, and the model's
MLmodel file (flavors and signature). Pickling and uploading a real model would only slow the
set-up of a thousand runs; regpilot never loads the model itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PASSING = {"test_accuracy": 0.95, "test_precision": 0.93, "test_recall": 0.92}
FEATURES = [f"f{i}" for i in range(8)]
_INPUTS = ", ".join(f'{{"type": "double", "name": "{f}", "required": true}}' for f in FEATURES)
MLMODEL = (
    "artifact_path: model\n"
    "flavors:\n"
    "  python_function:\n"
    "    env: {conda: conda.yaml, virtualenv: python_env.yaml}\n"
    "    loader_module: mlflow.sklearn\n"
    "    model_path: model.pkl\n"
    "    predict_fn: predict\n"
    "    python_version: 3.11.7\n"
    "  sklearn:\n"
    "    code: null\n"
    "    pickled_model: model.pkl\n"
    "    serialization_format: cloudpickle\n"
    "    sklearn_version: 1.5.2\n"
    "mlflow_version: 3.17.2\n"
    "signature:\n"
    f"  inputs: '[{_INPUTS}]'\n"
    """  outputs: '[{"type": "long", "required": true}]'\n"""
)


def mlmodel_dir() -> Path:
    """Return a folder holding the MLmodel file every synthetic model uploads."""
    folder = Path(tempfile.mkdtemp(prefix="regpilot-bench-model-"))
    (folder / "MLmodel").write_text(MLMODEL)
    return folder


def make_run(
    client: Any,
    experiment_id: str,
    model_dir: Path,
    metrics: Mapping[str, float] = PASSING,
    step: int = 0,
) -> str:
    """Create one finished run with a logged model; return its run id."""
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Param

    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    now = run.info.start_time
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()],
        params=[Param("C", "1.0"), Param("max_iter", "50")],
    )
    model = client.create_logged_model(experiment_id, name="model", source_run_id=run_id)
    client.log_model_artifacts(model.model_id, str(model_dir))
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
    client.set_terminated(run_id, "FINISHED")
    return str(run_id)


def make_runs(tracking_uri: str, experiment: str, count: int, threads: int = 4) -> list[str]:
    """Create `count` finished runs with logged models in one experiment, several at a time."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    model_dir = mlmodel_dir()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda _: make_run(client, experiment_id, model_dir), range(count)))
