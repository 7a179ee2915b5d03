"""A crashed run's broken model is never blessed (issue 11, part 5), on the real services.

The training script dies inside `log_model`: MLflow refuses to save the model (it cannot be
pickled), marks the logged model FAILED with no artifacts, and the run ends FAILED. Before the
fix, the run webhook registered it, PASSED, with `challenger`, and loading
`models:/NAME@challenger` failed ("Could not find an MLmodel configuration file").
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest

from tests.support import PASSING, post, run_webhook, wait_until

pytestmark = pytest.mark.integration


class Unpicklable:
    """A pyfunc model MLflow cannot save: it holds a lock, which cloudpickle refuses."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input


def _crashing_training(experiment: str, *, survive: bool) -> str:
    """Train, log metrics that pass the gate, then die inside log_model; return the run id.

    `survive`: the script catches the error and the run ends FINISHED anyway, so only the
    logged model's own status says it is broken.
    """
    import mlflow
    import mlflow.pyfunc

    class Model(mlflow.pyfunc.PythonModel, Unpicklable):
        pass

    mlflow.set_experiment(experiment)
    run_id = ""
    try:
        with mlflow.start_run() as run:
            run_id = run.info.run_id
            mlflow.log_metrics(PASSING)
            try:
                mlflow.pyfunc.log_model(name="model", python_model=Model())
            except Exception:
                if not survive:
                    raise
    except Exception:
        pass  # the script died: MLflow ended the run FAILED on the way out
    return run_id


def _notify(stack: dict[str, Any], run_id: str, model: str) -> int:
    secret = stack["settings"].run_webhook_secrets[0]
    body, headers = run_webhook(secret, run_id, model)
    status, _ = post(f"{stack['receiver'].url}/webhooks/runs", body, headers)
    return status


@pytest.mark.parametrize(
    ("survive", "run_status", "reasons"),
    [
        (False, "FAILED", ["the run ended FAILED", "the logged model is FAILED", "no MLmodel"]),
        (True, "FINISHED", ["the logged model is FAILED", "no MLmodel"]),
    ],
    ids=["script-died", "script-caught-the-error"],
)
def test_a_model_that_failed_to_save_gets_a_failed_verdict_and_no_challenger(
    stack, client, store, survive, run_status, reasons
):
    name = f"never-bless-{uuid.uuid4().hex[:6]}"
    run_id = _crashing_training(f"never-bless-{uuid.uuid4().hex[:6]}", survive=survive)
    run = client.get_run(run_id)
    assert run.info.status == run_status
    [logged] = client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    assert str(logged.status) == "FAILED"  # what MLflow made of the crash

    assert _notify(stack, run_id, name) == 202
    verdict = wait_until(
        lambda: client.get_run(run_id).data.tags.get("validation_status"), message="run verdict"
    )
    assert verdict == "FAILED"
    report = json.loads(client.get_run(run_id).data.tags["validation_report"])
    for reason in reasons:
        assert any(reason in r for r in report["reasons"]), (reason, report)
    assert client.search_model_versions(f"name = '{name}'") == []  # nothing to be challenger
    [gate] = [d for d in store.decisions(name) if d["kind"] == "gate"]  # the history says why
    assert gate["verdict"] == "FAILED"
    assert any(reasons[0] in c["reason"] for c in gate["checks"])
