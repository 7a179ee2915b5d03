"""The demo's training and checking: two runs via the run webhook, one hand registration, and a
model whose self-reported accuracy is measured against a golden dataset."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from regpilot.cli.local_stack import RunningStack

MODEL = "iris-classifier"
MANUAL_MODEL = "iris-classifier-manual"
MEASURED_MODEL = "iris-classifier-measured"
GOLDEN = "golden.csv"


def _iris_split() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    features, labels = load_iris(return_X_y=True, as_frame=True)
    split: tuple[Any, Any, Any, Any] = train_test_split(
        features, labels, test_size=0.3, random_state=7, stratify=labels
    )
    return split


def write_demo_policy(state: Path, base: Path) -> Path:
    """Write the golden CSV (iris' held-out rows) and the policy: `base` plus the measured model."""
    import yaml

    _, x_test, _, y_test = _iris_split()
    golden = (state / GOLDEN).resolve()  # the worker runs elsewhere
    x_test.assign(target=y_test).to_csv(golden, index=False)
    policy = yaml.safe_load(base.read_text(encoding="utf-8")) or {}
    models = policy.get("models") or {}
    models[MEASURED_MODEL] = {
        "evaluation": {
            "dataset": str(golden),
            "targets": "target",
            "model_type": "classifier",
            "metrics": {"accuracy_score": {"min": 0.85}},
            "logged_vs_measured": {"test_accuracy": "accuracy_score"},
            "max_gap": 0.05,
            "timeout_seconds": 120,
        }
    }
    policy["models"] = models
    path = state / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Expectation:
    """One row of the demo: what was done, and what the policy says must come of it."""

    label: str
    model: str
    run_id: str
    trigger: str
    expect_pass: bool


def train(name: str, estimator: Any, *, buggy: bool = False) -> str:
    """Fit on iris, log metrics and the model, return the run id.

    `buggy` is the self-report people distrust: labels misaligned with the rows in training,
    and the "test" metrics scored against its own predictions, so the run logs a perfect score.
    """
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    x_train, x_test, y_train, y_test = _iris_split()
    if buggy:
        y_train = y_train.sample(frac=1, random_state=3).set_axis(y_train.index)
    with mlflow.start_run(run_name=name) as run:
        estimator.fit(x_train, y_train)
        predicted = estimator.predict(x_test)
        if buggy:
            y_test = predicted  # the bug: predictions scored against themselves
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
        # Named, not inferred: inference starts a fresh Python per model to see what it imports
        # (seconds each), and these toy models need only what MLflow pins for scikit-learn.
        mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=infer_signature(x_test, predicted),
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
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
    click.echo(
        "training a model on misaligned labels that logs a perfect test_accuracy (scored "
        "against its own predictions) and measuring it on the golden set...",
        err=True,
    )
    liar = train("self-reported-perfect", LogisticRegression(max_iter=500), buggy=True)
    notify_run(liar, MEASURED_MODEL, url=url, secret=running.secrets.run_webhook_secret)
    rows = [
        Expectation("good model", MODEL, good, "POST /webhooks/runs", True),
        Expectation("bad model", MODEL, bad, "POST /webhooks/runs", False),
        Expectation("hand registered", MANUAL_MODEL, manual_run, "MLflow webhook", True),
        Expectation("logs 1.0, measured", MEASURED_MODEL, liar, "POST /webhooks/runs", False),
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
        "reasons": report.get("reasons", []),
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
        for name, expected, actual, result, *numbers in r["checks"]:
            if name.startswith("evaluation:") and result == "PASSED":
                continue  # steps that went fine (loaded, predicted...): noise in a demo
            line = f"{'':<4}{name:<22} expected {expected:<28} actual {actual:<10} {result}"
            if numbers and "logged" in numbers[0]:  # the self-report next to the measurement
                line += f"  (logged {numbers[0]['logged']:.3g}, measured {actual})"
            click.echo(line)
        for reason in r.get("reasons", [])[:3]:
            click.echo(f"{'':<4}why: {reason}")
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
