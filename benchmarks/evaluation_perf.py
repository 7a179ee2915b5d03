"""Cost of `regpilot.evaluation.evaluate_model` against calling `mlflow.models.evaluate` in-process.

    PYTHONPATH=. python -m benchmarks.evaluation_perf [--rounds 3]

Starts one local `mlflow server` (sqlite, one worker), logs a LogisticRegression trained on a
10,000-row `make_classification` dataset, then runs, interleaved in each round:

* floor: in this (warm) process, `mlflow.pyfunc.load_model` + `mlflow.models.evaluate` inside a
  fresh run (an untimed warm-up call first, so imports are not counted);
* `evaluate_model(..., start_method="subprocess")`;
* `evaluate_model(..., start_method="forkserver")` (the forkserver is warmed first, untimed).

Prints the median of each timing per variant as a Markdown table, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

KEYS = (
    "startup",
    "imports",
    "dataset",
    "load",
    "predict",
    "metrics",
    "logging",
    "overhead",
    "total",
)


def _floor(model_uri: str, data: Any, experiment: str) -> dict[str, float]:
    import mlflow
    import mlflow.models
    import mlflow.pyfunc

    mlflow.set_experiment(experiment)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    run = mlflow.start_run()
    timings["logging"] = time.perf_counter() - start
    try:
        t = time.perf_counter()
        model = mlflow.pyfunc.load_model(model_uri)
        timings["load"] = time.perf_counter() - t
        t = time.perf_counter()
        mlflow.models.evaluate(
            model, data=data, targets="label", model_type="classifier", evaluators=["default"]
        )
        timings["metrics"] = time.perf_counter() - t
    finally:
        t = time.perf_counter()
        mlflow.end_run()
        timings["logging"] += time.perf_counter() - t
    timings["total"] = time.perf_counter() - start
    del run
    return timings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from regpilot.cli.stack import LocalStack, Secrets
    from regpilot.evaluation import EvaluationSpec, evaluate_model, warm_forkserver

    state = Path(tempfile.mkdtemp(prefix="regpilot-eval-perf-"))
    stack = LocalStack(state)
    url = stack.start_mlflow(Secrets.load_or_create(state))
    try:
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("perf-models")
        x, y = make_classification(n_samples=10_000, n_features=8, random_state=0)
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
        model = LogisticRegression(max_iter=500).fit(frame, y)
        frame["label"] = y
        path = state / "data.csv"
        frame.to_csv(path, index=False)
        example = frame.drop(columns="label").head(5)
        with mlflow.start_run():
            uri = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=example,
                signature=infer_signature(example, model.predict(example)),
                pip_requirements=["scikit-learn"],
            ).model_uri
        spec = EvaluationSpec(str(path), "label", "classifier", timeout_seconds=300)
        data = pd.read_csv(path)
        _floor(uri, data, "perf-floor")  # warm-up: evaluator imports, matplotlib
        warm_forkserver(wait=True)
        results: dict[str, list[dict[str, float]]] = {
            "in-process floor": [],
            "subprocess": [],
            "forkserver": [],
        }
        loads = []
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            # The floor reads the CSV too, to compare like with like.
            t = time.perf_counter()
            data = pd.read_csv(path)
            read = time.perf_counter() - t
            floor = _floor(uri, data, "perf-floor")
            floor["dataset"] = read
            floor["total"] += read
            results["in-process floor"].append(floor)
            for method in ("subprocess", "forkserver"):
                result = evaluate_model(
                    uri,
                    spec,
                    tracking_uri=url,
                    experiment_name="perf-evaluations",
                    start_method=method,  # type: ignore[arg-type]
                )
                assert result.ok, result
                results[method].append(dict(result.timings))
        print(f"rounds: {args.rounds}; 1-min load average during rounds: {loads}")
        print("| variant | " + " | ".join(KEYS) + " |")
        print("|---|" + "---:|" * len(KEYS))
        for name, runs in results.items():
            cells = []
            for key in KEYS:
                values = [r[key] for r in runs if key in r]
                cells.append(f"{statistics.median(values):.2f}" if values else "-")
            print(f"| {name} | " + " | ".join(cells) + " |")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
