"""Helpers the integration tests share: training tiny models, signing, waiting on conditions."""

from __future__ import annotations

import functools
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from regpilot.core.signatures import sign_mlflow, sign_standard

T = TypeVar("T")

PASSING = {"test_accuracy": 0.95, "test_precision": 0.93, "test_recall": 0.92}
FAILING = {"test_accuracy": 0.60, "test_precision": 0.93, "test_recall": 0.92}


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 60,
    interval: float = 0.4,
    message: str = "condition",
) -> T:
    """Return the first truthy value of `predicate`, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} ({last_error})")


@functools.cache
def sklearn_requirements() -> list[str]:
    """Return the pinned requirements MLflow falls back to for a scikit-learn model.

    Given explicitly so that `log_model` skips its requirement inference, which loads the model
    in a fresh Python that imports mlflow and scikit-learn again: seconds per run, and nothing
    regpilot reads (it reads the flavor, signature, metrics and params, never requirements.txt).
    """
    import mlflow.sklearn

    return list(mlflow.sklearn.get_default_pip_requirements(include_skops=True))


def train_run(
    metrics: Mapping[str, float],
    *,
    experiment: str = "regpilot-tests",
    log_model: bool = True,
    tags: Mapping[str, str] | None = None,
    model_name: str = "model",
) -> str:
    """Log a run with these metrics and a tiny scikit-learn model; return the run id."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment(experiment)
    features = pd.DataFrame(
        {"petal_length": [0.0, 1.0, 0.5, 0.9] * 3, "petal_width": [1.0, 0.0, 0.2, 0.8] * 3}
    )
    labels = pd.Series([0, 1, 0, 1] * 3)
    with mlflow.start_run() as run:
        mlflow.log_params({"C": 1.0, "max_iter": 50})
        mlflow.log_metrics(dict(metrics))
        if tags:
            mlflow.set_tags(dict(tags))
        if log_model:
            model = LogisticRegression(max_iter=50).fit(features, labels)
            mlflow.sklearn.log_model(
                model,
                name=model_name,
                signature=infer_signature(features, labels),
                pip_requirements=sklearn_requirements(),
            )
        return str(run.info.run_id)


def post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """POST raw bytes; return (status, parsed JSON body)."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def run_webhook(
    secret: str,
    run_id: str,
    model_name: str | None = None,
    *,
    message_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Return (body, headers) of a signed run-completion webhook."""
    payload: dict[str, Any] = {"run_id": run_id}
    if model_name is not None:
        payload["model_name"] = model_name
    body = json.dumps(payload).encode()
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return body, {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secret, message_id, timestamp, body),
    }


def mlflow_webhook(
    secret: str,
    event: str,
    data: Mapping[str, Any],
    *,
    delivery_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Return (body, headers) of an MLflow registry webhook, byte-compatible with MLflow's."""
    entity, action = event.rsplit(".", 1)
    body = json.dumps(
        {
            "entity": entity,
            "action": action,
            "timestamp": "2026-11-27T08:27:32.399068+00:00",
            "data": dict(data),
        }
    ).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp = int(time.time()) if timestamp is None else timestamp
    return body, {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": str(timestamp),
        "X-MLflow-Signature": sign_mlflow(secret, delivery_id, timestamp, body),
    }


def derive(settings: Any, **updates: Any) -> Any:
    """Return a validated copy of Settings with some fields changed."""
    return type(settings)(**{**settings.model_dump(), **updates})
