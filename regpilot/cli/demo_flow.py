"""The demo's training and checking: two runs via the run webhook, one hand registration."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import click

from regpilot.cli.local_stack import RunningStack

MODEL = "iris-classifier"
MANUAL_MODEL = "iris-classifier-manual"


@dataclass
class Expectation:
    """One row of the demo: what was done, and what the policy says must come of it."""

    label: str
    model: str
    run_id: str
    trigger: str
    expect_pass: bool


def train(name: str, estimator: Any) -> str:
    """Fit on iris, log metrics and the model, return the run id."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.metrics import accuracy_score, precision_score, recall_score
    from sklearn.model_selection import train_test_split

    features, labels = load_iris(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.3, random_state=7, stratify=labels
    )
    with mlflow.start_run(run_name=name) as run:
        estimator.fit(x_train, y_train)
        predicted = estimator.predict(x_test)
        mlflow.log_params({"estimator": type(estimator).__name__})
        mlflow.log_metrics(
            {
                "test_accuracy": float(accuracy_score(y_test, predicted)),
                "test_precision": float(
                    precision_score(y_test, predicted, average="macro", zero_division=0)
                ),
                "test_recall": float(recall_score(y_test, predicted, average="macro")),
            }
        )
        mlflow.sklearn.log_model(
            estimator, name="model", signature=infer_signature(x_test, predicted)
        )
        return str(run.info.run_id)


def run(running: RunningStack, *, timeout: int) -> bool:
    """Train, notify, wait for regpilot, print the table; True if the outcome fits the policy."""
    import mlflow
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    from regpilot.client import notify_run

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    mlflow.set_tracking_uri(running.mlflow_url)
    mlflow.set_experiment("regpilot-demo")
    click.echo(
        "training a logistic regression (should pass) and a majority-class "
        "baseline (should fail)...",
        err=True,
    )
    good = train("logreg", LogisticRegression(max_iter=500))
    bad = train("majority-baseline", DummyClassifier(strategy="most_frequent"))
    url = f"{running.receiver_url}/webhooks/runs"
    for run_id in (good, bad):
        notify_run(run_id, MODEL, url=url, secret=running.secrets.run_webhook_secret)
    click.echo(
        "registering the passing run's model by hand under another name "
        "(MLflow's own webhook brings it to regpilot)...",
        err=True,
    )
    manual_run = train("logreg-hand-registered", LogisticRegression(max_iter=500, C=0.5))
    mlflow.register_model(f"runs:/{manual_run}/model", MANUAL_MODEL)
    rows = [
        Expectation("good model", MODEL, good, "POST /webhooks/runs", True),
        Expectation("bad model", MODEL, bad, "POST /webhooks/runs", False),
        Expectation("hand registered", MANUAL_MODEL, manual_run, "MLflow webhook", True),
    ]
    results = wait_for(rows, timeout)
    print_table(results)
    return all(r["as_expected"] for r in results)


def _state(client: Any, row: Expectation) -> dict[str, Any] | None:
    versions = client.search_model_versions(f"name = '{row.model}' and run_id = '{row.run_id}'")
    if row.trigger == "MLflow webhook":
        if not versions or "validation_status" not in versions[0].tags:
            return None
        tags = versions[0].tags
    else:
        tags = client.get_run(row.run_id).data.tags
        if "validation_status" not in tags:
            return None
    aliases: list[str] = []
    version = None
    if versions:
        mv = client.get_model_version(row.model, versions[0].version)
        version, aliases = int(mv.version), list(mv.aliases)
    report = json.loads(tags.get("validation_report", "{}") or "{}")
    passed = tags.get("validation_status") == "PASSED"
    registered_ok = (version is not None and "challenger" in aliases) if passed else version is None
    return {
        "label": row.label,
        "model": row.model,
        "run": row.run_id[:8],
        "trigger": row.trigger,
        "status": tags.get("validation_status"),
        "checks": report.get("checks", []),
        "version": version,
        "aliases": aliases,
        "as_expected": passed == row.expect_pass and registered_ok,
    }


def wait_for(rows: list[Expectation], timeout: int) -> list[dict[str, Any]]:
    """Poll MLflow until regpilot has decided on every row (or the timeout passes)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    deadline = time.monotonic() + timeout
    results: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(results) < len(rows):
        for row in rows:
            if row.label not in results:
                state = _state(client, row)
                if state is not None and (state["status"] != "PASSED" or state["aliases"]):
                    results[row.label] = state
        time.sleep(0.5)
    for row in rows:
        results.setdefault(
            row.label,
            {
                "label": row.label,
                "model": row.model,
                "run": row.run_id[:8],
                "trigger": row.trigger,
                "status": "NO DECISION (timeout)",
                "checks": [],
                "version": None,
                "aliases": [],
                "as_expected": False,
            },
        )
    return [results[row.label] for row in rows]


def print_table(results: list[dict[str, Any]]) -> None:
    """Print the outcome table: one block per run, one line per metric."""
    header = f"{'model':<24} {'run':<9} {'trigger':<20} {'verdict':<8} {'version':<8} aliases"
    click.echo("")
    click.echo(header)
    click.echo("-" * len(header))
    for r in results:
        version = str(r["version"]) if r["version"] is not None else "-"
        aliases = ",".join(r["aliases"]) or "-"
        click.echo(
            f"{r['model']:<24} {r['run']:<9} {r['trigger']:<20} {r['status']:<8} "
            f"{version:<8} {aliases}"
        )
        for name, expected, actual, result in r["checks"]:
            click.echo(f"{'':<4}{name:<20} expected {expected:<10} actual {actual:<10} {result}")
        click.echo(f"{'':<4}as the policy says: {'yes' if r['as_expected'] else 'NO'}")
    click.echo("")


def forget_keys(redis_url: str, prefix: str) -> None:
    """Delete the demo's Redis keys (only those under its own prefix)."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
