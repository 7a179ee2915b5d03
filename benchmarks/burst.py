"""Section 3: a burst of run-completion webhooks, drained by one worker (2 processes).

Every webhook names a finished run with a logged model; the burst spreads them over
`models` registered models, `keep` events each, so no version is pruned and every event makes
the same MLflow calls as the direct loop it is compared with: the MLflow server's own capacity
for those calls, from as many threads as the worker has processes.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks.e2e import DirectLoop, one_event
from benchmarks.runs import make_runs
from benchmarks.signed import run_webhook
from benchmarks.stack import BenchStack
from benchmarks.stats import Summary
from regpilot.stores.redis_store import RedisStore


@dataclass(frozen=True)
class BurstConfig:
    """How big a burst, how many times."""

    events: int = 1000
    repetitions: int = 3
    models: int = 100  # events / models = 10 = the default `keep`: nothing is pruned
    senders: int = 16  # concurrent connections posting the burst
    worker_concurrency: int = 2
    timeout_s: float = 600.0


@dataclass
class BurstRun:
    """One burst and what the registry looked like afterwards."""

    events: int
    ingest_s: float
    drain_s: float
    statuses: dict[int, int]
    outcomes: dict[str, int]
    versions: int
    distinct_runs: int
    registrations_recorded: int

    @property
    def events_per_s(self) -> float:
        """Return events processed per second, first POST to last task end."""
        return self.events / self.drain_s

    @property
    def lost(self) -> int:
        """Return events that produced no version."""
        return self.events - self.distinct_runs

    @property
    def doubled(self) -> int:
        """Return versions beyond one per run."""
        return self.versions - self.distinct_runs


@dataclass
class BurstResults:
    """Section 3's measurements."""

    config: BurstConfig
    runs: list[BurstRun] = field(default_factory=list)
    direct_s: list[float] = field(default_factory=list)

    def drain(self) -> Summary:
        """Return seconds to drain a burst."""
        return Summary.of([r.drain_s for r in self.runs])

    def rate(self) -> Summary:
        """Return regpilot's events per second."""
        return Summary.of([r.events_per_s for r in self.runs])

    def ingest_rate(self) -> Summary:
        """Return webhooks acknowledged per second while the burst was sent."""
        return Summary.of([r.events / r.ingest_s for r in self.runs])

    def direct_rate(self) -> Summary:
        """Return the direct loop's events per second."""
        return Summary.of([self.config.events / s for s in self.direct_s])

    def ratio(self) -> Summary:
        """Return regpilot's rate over the direct loop's, paired by repetition."""
        return Summary.of(
            [
                r.events_per_s / (self.config.events / d)
                for r, d in zip(self.runs, self.direct_s, strict=True)
            ]
        )


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())["delivery_id"]
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _wait_all(store: RedisStore, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    keys = [store.key("event", "runs", i) for i in ids]
    deadline = time.monotonic() + timeout
    while True:
        records = [json.loads(r) if r else {} for r in store.client.mget(keys)]
        if all(r.get("outcome") not in (None, "queued") for r in records):
            return records
        if time.monotonic() > deadline:
            waiting = sum(r.get("outcome") in (None, "queued") for r in records)
            raise RuntimeError(f"{waiting} of {len(ids)} events still queued after {timeout}s")
        time.sleep(0.1)


def _registry_counts(tracking_uri: str, models: list[str]) -> tuple[int, int]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    versions, runs = 0, set()
    for model in models:
        found = client.search_model_versions(filter_string=f"name = '{model}'", max_results=1000)
        versions += len(found)
        runs.update(v.run_id for v in found)
    return versions, len(runs)


def run_burst_benchmark(
    stack: BenchStack, config: BurstConfig, progress: Any = print
) -> BurstResults:
    """Run section 3 (the runs are made once and registered under fresh names each time)."""
    results = BurstResults(config)
    settings = stack.settings(task_queue=stack.prefix + "burst")
    store = RedisStore.from_settings(settings)
    started = time.monotonic()
    runs = make_runs(stack.mlflow_url, "bench-burst", config.events + 4)
    warmup, runs = runs[:4], runs[4:]
    progress(
        f"  burst: {len(runs)} runs with logged models made in {time.monotonic() - started:.0f}s"
    )
    receiver = stack.start_receiver("receiver-burst", "handlers:create_app()", settings)
    stack.start_worker("worker-burst", settings, concurrency=config.worker_concurrency)
    secret = settings.run_webhook_secrets[0]
    try:
        for run_id in warmup:  # both worker processes import mlflow and connect
            one_event(store, settings, receiver, run_id, f"burst-warmup-{uuid.uuid4().hex[:6]}")
        for rep in range(config.repetitions):
            tag = uuid.uuid4().hex[:6]
            models = [f"burst-{tag}-{m}" for m in range(config.models)]
            deliveries = [
                run_webhook(secret, run_id, models[i % config.models])
                for i, run_id in enumerate(runs)
            ]
            t0 = time.time()
            with ThreadPoolExecutor(max_workers=config.senders) as pool:
                answers = list(
                    pool.map(lambda d: _post(f"{receiver}/webhooks/runs", *d), deliveries)
                )
            ingest_s = time.time() - t0
            ids = [delivery for status, delivery in answers if status == 202]
            records = _wait_all(store, ids, config.timeout_s)
            drain_s = max(r["finished_at"] for r in records) - t0
            versions, distinct = _registry_counts(stack.mlflow_url, models)
            registrations = sum(
                1 for m in models for d in store.decisions(m, 1000) if d["kind"] == "registration"
            )
            run = BurstRun(
                events=len(runs),
                ingest_s=ingest_s,
                drain_s=drain_s,
                statuses=dict(Counter(status for status, _ in answers)),
                outcomes=dict(Counter(r["outcome"] for r in records)),
                versions=versions,
                distinct_runs=distinct,
                registrations_recorded=registrations,
            )
            results.runs.append(run)
            progress(
                f"  burst rep {rep + 1}/{config.repetitions}: "
                f"ingest {run.events / ingest_s:,.0f}/s, drained in {drain_s:.1f}s = "
                f"{run.events_per_s:.1f} events/s; versions "
                f"{versions}, lost {run.lost}, doubled {run.doubled}, outcomes {run.outcomes}"
            )
            results.direct_s.append(_direct(stack.mlflow_url, runs, config))
            progress(
                f"  direct rep {rep + 1}/{config.repetitions}: {config.events} events in "
                f"{results.direct_s[-1]:.1f}s = {config.events / results.direct_s[-1]:.1f} events/s"
            )
    finally:
        stack.stop("worker-burst")
        stack.stop("receiver-burst")
    return results


def _direct(tracking_uri: str, runs: list[str], config: BurstConfig) -> float:
    """Make the same calls straight from `worker_concurrency` threads; return seconds."""
    tag = uuid.uuid4().hex[:6]
    loops = [DirectLoop(tracking_uri) for _ in range(config.worker_concurrency)]
    loops[0].event(runs[0], f"direct-warmup-{tag}")
    shares = [runs[i :: config.worker_concurrency] for i in range(config.worker_concurrency)]

    def work(index: int) -> None:
        for position, run_id in enumerate(shares[index]):
            global_index = position * config.worker_concurrency + index
            loops[index].event(run_id, f"direct-{tag}-{global_index % config.models}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=config.worker_concurrency) as pool:
        list(pool.map(work, range(config.worker_concurrency)))
    return time.perf_counter() - started
