"""Metrics, readiness and JSON logs of the real receiver and a real worker process."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from handlers import create_app
from regpilot.cli.stack import free_port, redis_answers, throwaway_redis_argv
from regpilot.observability.logging import make_handler
from regpilot.stores.redis_store import RedisStore
from tests.conftest import WorkerProcess
from tests.support import PASSING, derive, run_webhook, train_run, wait_until

pytestmark = pytest.mark.integration


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def observed(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, WorkerProcess]]:
    """Settings with a queue of our own, and a JSON-logging worker that serves its metrics."""
    queue = f"{settings.task_queue}-obs-{uuid.uuid4().hex[:6]}"
    own = derive(
        settings,
        task_queue=queue,
        log_format="json",
        worker_metrics_port=free_port(),
        ops_token="obs-" + uuid.uuid4().hex,
    )
    worker = WorkerProcess(own, tmp_path_factory.mktemp("obs-worker") / "worker.log")
    yield own, worker
    worker.stop()


def _worker_metrics(settings: Settings) -> dict:
    url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        return _samples(response.read().decode())


def test_metrics_move_when_a_webhook_is_processed_and_logs_carry_the_ids(observed, mlflow_server):
    settings, worker = observed
    http = create_app(settings, configure_logging=False).test_client()
    model = f"obs-{uuid.uuid4().hex[:8]}"
    run_id = train_run(PASSING)
    delivery = f"msg_{uuid.uuid4().hex}"
    body, headers = run_webhook(settings.run_webhook_secrets[0], run_id, model, message_id=delivery)

    web_before = _samples(http.get("/metrics").get_data(as_text=True))
    worker_before = _worker_metrics(settings)
    receiver_log = io.StringIO()
    handler = make_handler("json", receiver_log)
    ours = logging.getLogger("regpilot")
    level = ours.level
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    try:
        assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 202
        assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 200
        forged = {**headers, "webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl"}
        assert http.post("/webhooks/runs", data=body, headers=forged).status_code == 401
    finally:
        ours.removeHandler(handler)
        ours.setLevel(level)
    store = RedisStore.from_settings(settings)
    wait_until(
        lambda: any(
            e["delivery_id"] == delivery and e.get("outcome") == "processed"
            for e in store.events(20)
        ),
        timeout=120,
        message="the worker to process the delivery",
    )

    web_after = _samples(http.get("/metrics").get_data(as_text=True))
    received = "regpilot_webhooks_received_total"
    for outcome in ("queued", "duplicate"):
        labels = {"source": "runs", "event": "run.completed", "outcome": outcome}
        assert _value(web_after, received, **labels) == _value(web_before, received, **labels) + 1
    failures = "regpilot_webhook_signature_failures_total"
    assert (
        _value(web_after, failures, source="runs")
        == _value(web_before, failures, source="runs") + 1
    )
    duplicates = "regpilot_webhook_duplicates_total"
    assert (
        _value(web_after, duplicates, source="runs")
        == _value(web_before, duplicates, source="runs") + 1
    )
    enqueued = "regpilot_webhook_enqueue_seconds_count"
    assert (
        _value(web_after, enqueued, source="runs")
        == _value(web_before, enqueued, source="runs") + 1
    )

    # The outcome is recorded by the task's success handler, just before its postrun signal.
    task = "regpilot.run_completed"

    def worker_counted() -> dict | None:
        now = _worker_metrics(settings)
        done = _value(now, "regpilot_tasks_total", task=task, outcome="processed")
        return (
            now
            if done
            == _value(worker_before, "regpilot_tasks_total", task=task, outcome="processed") + 1
            else None
        )

    worker_after = wait_until(worker_counted, timeout=30, message="the task metrics")
    assert _value(worker_after, "regpilot_task_duration_seconds_count", task=task) >= 1
    assert _value(worker_after, "regpilot_gate_verdicts_total", model=model, verdict="PASSED") == 1
    assert _value(worker_after, "regpilot_registrations_total", model=model) == 1
    assert _value(worker_after, "regpilot_alias_moves_total", model=model, alias="challenger") == 1

    # Logs: every JSON line of both processes parses, and the lines about this delivery carry ids.
    receiver_lines = [json.loads(line) for line in receiver_log.getvalue().splitlines()]
    queued = [line for line in receiver_lines if line["event"] == "webhook.queued"]
    assert queued and queued[-1]["delivery_id"] == delivery
    assert queued[-1]["run_id"] == run_id and queued[-1]["model"] == model
    invalid = [line for line in receiver_lines if line["event"] == "webhook.signature_invalid"]
    assert invalid and invalid[-1]["delivery_id"] == delivery
    # Every line: no start-up banner in JSON mode, and Python warnings are log lines too.
    worker_lines = [json.loads(line) for line in worker.log_path.read_text().splitlines() if line]
    about = [line for line in worker_lines if line.get("delivery_id") == delivery]
    gate = [line for line in about if line["event"] == "decision.gate"]
    assert gate and gate[0]["run_id"] == run_id and gate[0]["model"] == model
    registered = [line for line in about if line["event"] == "decision.registration"]
    assert registered and registered[0]["version"] >= 1 and registered[0]["task"] == task
    secret = settings.run_webhook_secrets[0]
    assert secret not in worker.log_path.read_text() and secret not in receiver_log.getvalue()


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A redis-server of this test's own on a free port: stopping it touches no one else."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not on PATH")
    port = free_port()
    process = subprocess.Popen(
        throwaway_redis_argv(server, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    wait_until(lambda: redis_answers("127.0.0.1", port), timeout=10, message="redis-server")
    yield process, port
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


def test_readiness_flips_when_redis_stops_and_mlflow_is_reported_but_not_fatal(settings, own_redis):
    process, port = own_redis
    closed = f"http://127.0.0.1:{free_port()}"
    mlflow_down = derive(
        settings, redis_url=f"redis://127.0.0.1:{port}/0", mlflow_tracking_uri=closed
    )
    http = create_app(mlflow_down, configure_logging=False).test_client()
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {
        "status": "ready",
        "redis": True,
        "policy": True,
        "mlflow": False,
    }
    assert http.get("/healthz").status_code == 200

    process.terminate()
    process.wait(timeout=10)
    not_ready = http.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json["status"] == "not ready" and not_ready.json["redis"] is False
    assert http.get("/healthz").status_code == 200  # alive, just not ready
    metrics = _samples(http.get("/metrics").get_data(as_text=True))
    assert _value(metrics, "regpilot_redis_up") == 0


def test_readiness_reports_a_reachable_mlflow(settings, mlflow_server):
    http = create_app(settings, configure_logging=False).test_client()
    answer = http.get("/readyz")
    assert answer.status_code == 200 and answer.json["mlflow"] is True
