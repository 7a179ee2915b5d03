"""Webhook-to-verdict time with the measured gate, against `mlflow.models.evaluate` direct.

    PYTHONPATH=. python -m benchmarks.evaluation_flow_perf [--candidates 3]

Starts a local `mlflow server`, the receiver (`regpilot serve`) and one real `regpilot worker`
(shipped defaults; Redis at REGPILOT_REDIS_URL or 127.0.0.1:6379 under a unique key prefix),
logs `--candidates` LogisticRegression runs trained on a 10,000-row `make_classification` set,
and posts each to `/webhooks/runs` under a policy whose `evaluation` block measures on those
rows with `evaluation.champion` set. For each candidate it prints the seconds from the POST to
the `validation_status` tag, the engine's split (startup, load, predict, metrics, logging), and
how many evaluations ran (the champion's must not add any). The floor is `load_model` +
`mlflow.models.evaluate` in this warm process on the same model and rows.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.evaluation_perf import _floor, _free_port, _start_server

SPLIT = ("startup", "dataset", "load", "predict", "metrics", "logging", "overhead", "total")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument(
        "--pool",
        default="prefork",
        help="worker pool: prefork (subprocess) or threads (forkserver)",
    )
    args = parser.parse_args()
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from config.settings import Settings
    from regpilot.cli.demo_flow import forget_keys
    from regpilot.client import notify_run
    from regpilot.queue.evaluation import EVALUATION_EXPERIMENT
    from regpilot.stores.redis_store import RedisStore

    state = Path(tempfile.mkdtemp(prefix="regpilot-evalflow-perf-"))
    server, url = _start_server(state)
    processes: list[subprocess.Popen[bytes]] = []
    prefix = f"regpilot-bench-{uuid.uuid4().hex[:8]}:"
    try:
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("bench-training")
        x, y = make_classification(n_samples=10_000, n_features=8, random_state=0)
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
        golden = state / "golden.csv"
        frame.assign(label=y).to_csv(golden, index=False)
        policy = state / "policy.yaml"
        policy.write_text(
            "defaults:\n  metrics: {}\nmodels:\n  bench-model:\n    auto_promote: true\n"
            f"    evaluation:\n      dataset: {golden}\n      targets: label\n"
            "      model_type: classifier\n      metrics: {accuracy_score: {min: 0.5}}\n"
            "      champion: {metric: accuracy_score, min_improvement: 0.0}\n"
        )
        secret = "whsec_" + "YmVuY2htYXJrLXNlY3JldC1mb3ItcmVncGlsb3Q="
        port = _free_port()
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": url,
            "REGPILOT_REDIS_URL": os.environ.get("REGPILOT_REDIS_URL", "redis://127.0.0.1:6379/13"),
            "REGPILOT_KEY_PREFIX": prefix,
            "REGPILOT_TASK_QUEUE": prefix.rstrip(":"),
            "REGPILOT_POLICY_FILE": str(policy),
            "REGPILOT_RUN_WEBHOOK_SECRET": secret,
            "REGPILOT_STATE_DIR": str(state),
        }
        log = open(state / "services.log", "wb")  # noqa: SIM115 - lives as long as they do
        for argv in (["serve", "--port", str(port)], ["worker", "-c", "1", "--pool", args.pool]):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "regpilot.cli.main", *argv],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        time.sleep(8)  # receiver and worker start-up
        client = MlflowClient(url)
        store = RedisStore.from_settings(
            Settings(
                mlflow_tracking_uri=url, redis_url=env["REGPILOT_REDIS_URL"], key_prefix=prefix
            )
        )
        _floor_uri: str | None = None
        rows = []
        for index in range(args.candidates):
            model = LogisticRegression(max_iter=200 + index).fit(frame, y)
            example = frame.head(5)
            with mlflow.start_run() as run:
                mlflow.log_metric("test_accuracy", 0.9)
                uri = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    input_example=example,
                    signature=infer_signature(example, model.predict(example)),
                    pip_requirements=["scikit-learn"],
                ).model_uri
            _floor_uri = _floor_uri or uri
            started = time.perf_counter()
            notify_run(
                run.info.run_id,
                "bench-model",
                url=f"http://127.0.0.1:{port}/webhooks/runs",
                secret=secret,
            )
            while "validation_status" not in client.get_run(run.info.run_id).data.tags:
                time.sleep(0.1)
            seconds = time.perf_counter() - started
            tags = client.get_run(run.info.run_id).data.tags
            # The engine's split, as the worker recorded it in the decision history.
            gate = next(d for d in store.decisions("bench-model") if d["kind"] == "gate")
            timings = gate["evaluation"]["timings"]
            experiment = client.get_experiment_by_name(EVALUATION_EXPERIMENT)
            count = len(client.search_runs([experiment.experiment_id]))
            rows.append((index + 1, seconds, timings, count, tags["validation_status"]))
        data = pd.read_csv(golden)
        assert _floor_uri is not None
        _floor(_floor_uri, data, "bench-floor")  # warm-up
        floor = _floor(_floor_uri, data, "bench-floor")
        print(f"1-min load average at the end: {os.getloadavg()[0]:.1f}")
        print("| candidate | webhook to verdict | " + " | ".join(SPLIT) + " | evaluations so far |")
        print("|---|---:|" + "---:|" * len(SPLIT) + "---:|")
        for number, seconds, timings, count, status in rows:
            cells = " | ".join(f"{timings[k]:.2f}" if k in timings else "-" for k in SPLIT)
            print(f"| {number} ({status}) | {seconds:.2f} | {cells} | {count} |")
        print(
            f"| floor: load_model + mlflow.models.evaluate in-process | {floor['total']:.2f} | "
            f"- | - | {floor['load']:.2f} | - | {floor['metrics']:.2f} | {floor['logging']:.2f}"
            " | - | - | - |"
        )
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        forget_keys(os.environ.get("REGPILOT_REDIS_URL", "redis://127.0.0.1:6379/13"), prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
