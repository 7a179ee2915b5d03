"""Prometheus metrics of the receiver and the worker, and their exposition.

Processes: the receiver under gunicorn and `regpilot worker` (Celery prefork) both run several
processes, so both use prometheus-client's multiprocess mode: every process writes its samples
to files in PROMETHEUS_MULTIPROC_DIR, and a scrape merges them. The receiver serves the merge on
`GET /metrics`; the worker serves its own on REGPILOT_WORKER_METRICS_PORT. Each container (each
receiver, each worker) needs a directory of its own: the files are named by process id.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# --- the receiver ---------------------------------------------------------------------------

WEBHOOKS = Counter(
    "regpilot_webhooks_received",
    "Webhook deliveries by source, event and outcome "
    "(queued, duplicate, ignored, rejected, unavailable, error).",
    ["source", "event", "outcome"],
)
SIGNATURE_FAILURES = Counter(
    "regpilot_webhook_signature_failures",
    "Webhook deliveries refused for a bad or missing signature or a stale timestamp.",
    ["source"],
)
DUPLICATES = Counter(
    "regpilot_webhook_duplicates",
    "Deliveries whose id was already claimed (a sender's retry); nothing was enqueued.",
    ["source"],
)
ENQUEUE_SECONDS = Histogram(
    "regpilot_webhook_enqueue_seconds",
    "Time to claim a delivery in Redis and hand its task to the broker.",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# --- the worker -----------------------------------------------------------------------------

TASKS = Counter(
    "regpilot_tasks",
    "Task runs by task and outcome (processed, failed, retry, dead).",
    ["task", "outcome"],
)
TASK_SECONDS = Histogram(
    "regpilot_task_duration_seconds",
    "Wall time of one task run, retries counted separately.",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
TASK_RETRIES = Counter(
    "regpilot_task_retries", "Transient failures that were scheduled for a retry.", ["task"]
)
DEAD_LETTERS = Counter(
    "regpilot_dead_letters",
    "Task runs that failed for good and became dead letters.",
    ["task"],
)

# --- decisions (recorded by the workflows, once per decision) -------------------------------

GATE_VERDICTS = Counter(
    "regpilot_gate_verdicts", "Gate verdicts by model and verdict.", ["model", "verdict"]
)
REGISTRATIONS = Counter("regpilot_registrations", "Model versions regpilot registered.", ["model"])
ALIAS_MOVES = Counter(
    "regpilot_alias_moves",
    "Alias moves (challenger forward, champion promotions) by model and alias.",
    ["model", "alias"],
)
RETENTION_ACTIONS = Counter(
    "regpilot_retention_actions",
    "Old versions archived or deleted by retention, by model and action.",
    ["model", "action"],
)

_log = logging.getLogger("regpilot.metrics")


def count_decision(model: str, kind: str, details: Mapping[str, Any]) -> None:
    """Count a newly recorded decision under the metric of its kind, never failing the caller.

    A metric that cannot be written (a multiprocess directory gone, a full disk) must not turn a
    registry decision that was already applied into a retry or a dead letter.
    """
    try:
        _count_decision(model, kind, details)
    except Exception:
        _log.warning("metrics.update_failed", exc_info=True)


def _count_decision(model: str, kind: str, details: Mapping[str, Any]) -> None:
    if kind == "gate":
        GATE_VERDICTS.labels(model=model, verdict=str(details.get("verdict"))).inc()
    elif kind == "registration":
        REGISTRATIONS.labels(model=model).inc()
    elif kind in ("alias", "promotion"):
        ALIAS_MOVES.labels(model=model, alias=str(details.get("alias"))).inc()
    elif kind == "retention":
        RETENTION_ACTIONS.labels(model=model, action=str(details.get("action"))).inc()


def task_outcome(state: str | None, retval: Any) -> str:
    """Return the outcome label of a finished task run from Celery's state and its result."""
    if state == "RETRY":
        return "retry"
    if state == "FAILURE":
        return "dead"
    if isinstance(retval, dict) and isinstance(retval.get("outcome"), str):
        return str(retval["outcome"])
    return "processed"


# --- exposition -----------------------------------------------------------------------------


class _Default(Collector):
    # Lets a per-scrape registry include the process-wide default one.
    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """Return this process's metrics (merged over processes in multiprocess mode)."""
    registry = CollectorRegistry()
    try:
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    except ValueError:  # not in multiprocess mode: this process holds every sample
        registry.register(_Default())
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


def use_multiprocess_dir(directory: Path | None) -> Path:
    """Turn on multiprocess mode for this process and the ones it forks; return the directory.

    Stale files of an earlier run are removed first (prometheus-client's advice). Without a
    directory, a private temporary one is made and removed when this process exits.
    """
    if directory is None:
        path = Path(tempfile.mkdtemp(prefix="regpilot-metrics-"))
        # Forked children inherit atexit handlers; only the process that made it removes it.
        atexit.register(_remove_if_owner, path, os.getpid())
    else:
        path = directory
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    os.environ[_MULTIPROC_ENV] = str(path)
    # prometheus-client picks its value class at import; labelled metrics create their values
    # lazily, so switching before the first sample is recorded is enough.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return path


def _remove_if_owner(path: Path, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def mark_process_dead(pid: int) -> None:
    """Drop the live-gauge files of a process that exited (gunicorn's child_exit hook)."""
    try:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    except (KeyError, TypeError, ValueError):
        pass  # not in multiprocess mode


def start_exporter(host: str, port: int) -> None:
    """Serve this process's merged metrics on http://host:port/metrics in a daemon thread."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)
