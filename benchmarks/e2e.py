"""Section 2: end-to-end delay, from a run-completion webhook to `challenger` on the new version.

regpilot: POST /webhooks/runs to the receiver (gunicorn), Redis, a Celery worker (prefork, 2
processes) that gates, registers, moves `challenger`, retains and tags the run. The delay ends
when the worker records the alias move, right after MLflow acknowledged it (the record's
timestamp), so polling never loads the MLflow server during the measurement.

The floor: the same MLflow REST calls, made directly from one Python loop with MlflowClient
(what a script without a queue would do): read the run, its logged model and its MLmodel, read
the model's versions, create the version with its tags, read the aliases, set `challenger`,
tag the run. The counting proxy shows both call sequences side by side.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.proxy import CountingProxy
from benchmarks.runs import make_runs
from benchmarks.signed import run_webhook
from benchmarks.stack import BenchStack
from benchmarks.stats import Summary
from config.settings import Settings
from regpilot.stores.redis_store import RedisStore


@dataclass(frozen=True)
class E2EConfig:
    """How many events, in how many repetitions."""

    repetitions: int = 5
    events: int = 8  # per repetition, on a fresh model (fewer than `keep`: nothing is pruned)
    warmup_events: int = 4
    counted_events: int = 14  # through the counting proxy; beyond `keep` each prunes one


@dataclass
class E2EResults:
    """Section 2's measurements (milliseconds)."""

    config: E2EConfig
    ours_ms: list[list[float]] = field(default_factory=list)  # per rep, per event
    ours_done_ms: list[list[float]] = field(default_factory=list)
    floor_ms: list[list[float]] = field(default_factory=list)
    floor_all_ms: list[list[float]] = field(default_factory=list)
    ours_gate_ms: list[list[float]] = field(default_factory=list)
    floor_gate_ms: list[list[float]] = field(default_factory=list)
    calls_first: Counter[tuple[str, str]] = field(default_factory=Counter)
    calls_plain: Counter[tuple[str, str]] = field(default_factory=Counter)
    calls_pruning: Counter[tuple[str, str]] = field(default_factory=Counter)
    calls_floor: Counter[tuple[str, str]] = field(default_factory=Counter)
    calls_per_event: list[int] = field(default_factory=list)

    def ours(self) -> Summary:
        """Return the per-repetition medians of regpilot's delay."""
        return Summary.of([_median(r) for r in self.ours_ms])

    def ours_done(self) -> Summary:
        """Return the per-repetition medians of the time until the task finished."""
        return Summary.of([_median(r) for r in self.ours_done_ms])

    def floor(self) -> Summary:
        """Return the per-repetition medians of the direct loop's delay."""
        return Summary.of([_median(r) for r in self.floor_ms])

    def floor_all(self) -> Summary:
        """Return the per-repetition medians of the direct loop incl. the run tags."""
        return Summary.of([_median(r) for r in self.floor_all_ms])

    def ours_gate(self) -> Summary:
        """Return the per-repetition medians of the time until the gate's record."""
        return Summary.of([_median(r) for r in self.ours_gate_ms])

    def floor_gate(self) -> Summary:
        """Return the per-repetition medians of the direct loop's first three calls."""
        return Summary.of([_median(r) for r in self.floor_gate_ms])

    def overhead_ms(self) -> Summary:
        """Return regpilot's delay minus the floor, in ms, paired by repetition."""
        return Summary.of(
            [_median(o) - _median(f) for o, f in zip(self.ours_ms, self.floor_ms, strict=True)]
        )

    def overhead_pct(self) -> Summary:
        """Return regpilot's delay over the floor, in percent, paired by repetition."""
        return Summary.of(
            [
                100.0 * (_median(o) / _median(f) - 1.0)
                for o, f in zip(self.ours_ms, self.floor_ms, strict=True)
            ]
        )


def settings_keep(settings: Settings, model: str) -> int:
    """Return how many versions the policy keeps for `model`."""
    from config.policy import load_policy

    return load_policy(settings.policy_file).for_model(model).retention_rules().keep


def _median(values: list[float]) -> float:
    return Summary.of(values).median


def _post(url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        if response.status != 202:
            raise RuntimeError(f"receiver answered {response.status}: {answer}")
        return answer


def wait_finished(store: RedisStore, source: str, delivery_id: str, timeout: float) -> dict:
    """Poll Redis (not MLflow) until the worker recorded the delivery's outcome."""
    key = store.key("event", source, delivery_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = store.client.get(key)
        record = json.loads(raw) if raw else {}
        if record.get("outcome") not in (None, "queued"):
            if record["outcome"] != "processed":
                raise RuntimeError(f"delivery {delivery_id} ended {record}")
            return record
        time.sleep(0.002)
    raise RuntimeError(f"delivery {delivery_id} not processed within {timeout}s")


def _decision(store: RedisStore, model: str, delivery_id: str, kind: str) -> dict:
    for decision in store.decisions(model, 50):
        trigger = decision.get("trigger", {})
        if decision.get("kind") == kind and trigger.get("delivery_id") == delivery_id:
            return decision
    raise RuntimeError(f"no {kind} decision for {delivery_id} on {model}")


def one_event(
    store: RedisStore,
    settings: Settings,
    receiver: str,
    run_id: str,
    model: str,
    marks: dict[str, float] | None = None,
) -> tuple[float, float]:
    """Send one webhook and wait for it; return (ms to challenger, ms to task end).

    `marks` receives `gate`: ms until the gate's decision was recorded, after the first three
    MLflow calls (run, logged model, MLmodel).
    """
    body, headers = run_webhook(settings.run_webhook_secrets[0], run_id, model)
    started = time.time()
    answer = _post(f"{receiver}/webhooks/runs", body, headers)
    record = wait_finished(store, "runs", answer["delivery_id"], timeout=120)
    decision = _decision(store, model, answer["delivery_id"], "alias")
    if marks is not None:
        gate = _decision(store, model, answer["delivery_id"], "gate")
        marks["gate"] = (gate["at"] - started) * 1000.0
    return (decision["at"] - started) * 1000.0, (record["finished_at"] - started) * 1000.0


class DirectLoop:
    """The floor: regpilot's MLflow calls for one event, made straight from this process."""

    def __init__(self, tracking_uri: str) -> None:
        import requests
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.registry = self.client._get_registry_client()
        self.http = requests.Session()
        self.tracking_uri = tracking_uri.rstrip("/")
        self.first_calls_ms = 0.0  # the last event's run, logged model and MLmodel reads

    def event(self, run_id: str, model: str, alias: str = "challenger") -> tuple[float, float]:
        """Do one event's calls; return (ms until the alias is set, ms incl. the run tags)."""
        from mlflow.entities import RunTag

        started = time.perf_counter()
        run = self.client.get_run(run_id)
        model_id = run.outputs.model_outputs[0].model_id
        logged = self.client.get_logged_model(model_id)
        location = logged.artifact_location.removeprefix("mlflow-artifacts:")
        mlmodel = self.http.get(
            f"{self.tracking_uri}/api/2.0/mlflow-artifacts/artifacts{location}/MLmodel",
            timeout=30,
        )
        mlmodel.raise_for_status()
        self.first_calls_ms = (time.perf_counter() - started) * 1000.0
        self.client.search_model_versions(filter_string=f"name = '{model}'", max_results=1000)
        try:
            version = self._create(model, logged.model_id, run_id)
        except Exception:
            self.client.create_registered_model(model)
            version = self._create(model, logged.model_id, run_id)
        self.client.get_registered_model(model)
        self.registry.set_registered_model_alias(model, alias, str(version))
        aliased = time.perf_counter()
        self.client.log_batch(run_id, tags=[RunTag("validation_status", "PASSED")])
        done = time.perf_counter()
        return (aliased - started) * 1000.0, (done - started) * 1000.0

    def _create(self, model: str, model_id: str, run_id: str) -> str:
        tags = {
            "source_run_id": run_id,
            "registered_by": "regpilot",
            "validation_status": "PASSED",
            "framework": "sklearn",
            "metadata": json.dumps({"metrics": {"test_accuracy": 0.95}, "features": ["f0"]}),
        }
        created = self.client.create_model_version(
            model,
            f"models:/{model_id}",
            run_id=run_id,
            tags=tags,
            await_creation_for=0,
            model_id=model_id,
        )
        return str(created.version)


def run_e2e_benchmark(stack: BenchStack, config: E2EConfig, progress: Any = print) -> E2EResults:
    """Run section 2."""
    results = E2EResults(config)
    mlflow_url = stack.mlflow_url
    proxy = CountingProxy(mlflow_url)
    settings = stack.settings(task_queue=stack.prefix + "e2e")
    counted = stack.settings(task_queue=stack.prefix + "e2e-counted", mlflow_tracking_uri=proxy.url)
    store = RedisStore.from_settings(settings)
    needed = 2 * (config.warmup_events + config.repetitions * config.events)
    needed += config.counted_events + 2  # the counting pass, then two direct events
    started = time.monotonic()
    runs = make_runs(mlflow_url, "bench-e2e", needed)
    progress(f"  e2e: {needed} runs with logged models made in {time.monotonic() - started:.0f}s")
    receiver = stack.start_receiver("receiver-e2e", "handlers:create_app()", settings)
    stack.start_worker("worker-e2e", settings)
    loop = DirectLoop(mlflow_url)
    tag = uuid.uuid4().hex[:6]
    try:
        for _ in range(config.warmup_events):  # both worker processes import and connect
            one_event(store, settings, receiver, runs.pop(), f"e2e-warmup-{tag}")
            loop.event(runs.pop(), f"e2e-floor-warmup-{tag}")
        for rep in range(config.repetitions):
            ours, ours_done, floor, floor_all = [], [], [], []
            ours_gate: list[float] = []
            floor_gate: list[float] = []
            for _ in range(config.events):
                # Interleaved, so both see the same machine and the same database size.
                marks: dict[str, float] = {}
                delay, done = one_event(
                    store, settings, receiver, runs.pop(), f"e2e-{tag}-{rep}", marks
                )
                ours.append(delay)
                ours_gate.append(marks["gate"])
                ours_done.append(done)
                direct, direct_all = loop.event(runs.pop(), f"e2e-floor-{tag}-{rep}")
                floor.append(direct)
                floor_gate.append(loop.first_calls_ms)
                floor_all.append(direct_all)
            results.ours_ms.append(ours)
            results.ours_done_ms.append(ours_done)
            results.floor_ms.append(floor)
            results.floor_all_ms.append(floor_all)
            results.ours_gate_ms.append(ours_gate)
            results.floor_gate_ms.append(floor_gate)
            progress(
                f"  e2e rep {rep + 1}/{config.repetitions}: regpilot {_median(ours):6.1f} ms "
                f"(task end {_median(ours_done):6.1f}), direct loop {_median(floor):6.1f} ms"
            )
        stack.stop("worker-e2e")
        # The counting pass: the worker talks to MLflow through the proxy.
        stack.start_worker("worker-e2e-counted", counted)
        receiver_counted = stack.start_receiver(
            "receiver-e2e-counted", "handlers:create_app()", counted
        )
        counted_store = RedisStore.from_settings(counted)
        one_event(counted_store, counted, receiver_counted, runs.pop(), f"e2e-cw-{tag}")
        model = f"e2e-counted-{tag}"
        keep = settings_keep(counted, model)
        for index in range(config.counted_events - 1):
            proxy.reset()
            one_event(counted_store, counted, receiver_counted, runs.pop(), model)
            calls = proxy.snapshot()
            results.calls_per_event.append(sum(calls.values()))
            if index == 0:
                results.calls_first = calls  # the model does not exist yet
            elif index == 1:
                results.calls_plain = calls
            elif index >= keep:
                results.calls_pruning = calls  # more versions than `keep`: one is archived
        floor_proxy = DirectLoop(proxy.url)
        floor_proxy.event(runs.pop(), f"e2e-floor-counted-{tag}")  # warm-up and registry create
        proxy.reset()
        floor_proxy.event(runs.pop(), f"e2e-floor-counted-{tag}")
        results.calls_floor = proxy.snapshot()
        progress(f"  e2e calls per event: {results.calls_per_event}")
    finally:
        for name in ("worker-e2e", "worker-e2e-counted", "receiver-e2e", "receiver-e2e-counted"):
            stack.stop(name)
        proxy.close()
    return results
