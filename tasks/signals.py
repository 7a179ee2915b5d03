"""Celery signal handlers: task metrics, and the log context every line of a task run carries."""

from __future__ import annotations

import time
from contextvars import Token
from typing import Any

from celery import signals

from regpilot.observability import metrics
from regpilot.observability.logging import bind, unbind
from regpilot.queue import names

_running: dict[str, tuple[float, Token[Any]]] = {}


def task_log_fields(task: str, args: Any, kwargs: Any) -> dict[str, Any]:
    """Return the log-context fields of a task run: task, delivery, run, model, version."""
    fields: dict[str, Any] = {"task": task}
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    fields.update(names.log_fields(task, args or ()))
    for name in ("source", "delivery_id", "dead_letter_id"):
        if kwargs.get(name) is not None:
            fields[name] = kwargs[name]
    return fields


def _started(task_id: str, task: Any, args: Any = (), kwargs: Any = None, **_: Any) -> None:
    token = bind(task_id=task_id, **task_log_fields(task.name, args, kwargs))
    _running[task_id] = (time.perf_counter(), token)


def _finished(
    task_id: str, task: Any, retval: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _running.pop(task_id, None)
    metrics.TASKS.labels(task=task.name, outcome=metrics.task_outcome(state, retval)).inc()
    if started is not None:
        metrics.TASK_SECONDS.labels(task=task.name).observe(time.perf_counter() - started[0])
        unbind(started[1])


def _retrying(sender: Any = None, request: Any = None, **_: Any) -> None:
    name = getattr(sender, "name", None) or getattr(request, "task", None) or "unknown"
    metrics.TASK_RETRIES.labels(task=name).inc()


def _failed(sender: Any = None, **_: Any) -> None:
    # Celery sends task_failure only when no retry follows: the task's on_failure dead-letters it.
    metrics.DEAD_LETTERS.labels(task=getattr(sender, "name", "unknown")).inc()


def connect() -> None:
    """Connect the handlers (idempotent: Celery ignores a receiver connected twice)."""
    signals.task_prerun.connect(_started, weak=False)
    signals.task_postrun.connect(_finished, weak=False)
    signals.task_retry.connect(_retrying, weak=False)
    signals.task_failure.connect(_failed, weak=False)


connect()
