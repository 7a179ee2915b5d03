"""The tasks. Each one takes ids, re-reads state and is safe to run twice."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Task

from core.registry_port import NotFound, RegistryError, TransientRegistryError
from stores.redis_store import LockTimeout
from tasks import runtime
from tasks.celery_app import app
from workflows.run_completed import RunNotFinished, process_run_completed
from workflows.validation import NoLoggedModel, NoModelName
from workflows.version_created import process_version_created

log = logging.getLogger("regpilot.tasks")

# Transient: retried with backoff, then a dead letter. Declared once, here.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientRegistryError,
    RunNotFinished,
    LockTimeout,
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
)
# Permanent: a recorded result, never retried.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    NotFound,
    NoLoggedModel,
    NoModelName,
    RegistryError,
)

_settings = app.conf.regpilot_settings


class RegpilotTask(Task):  # type: ignore[misc]
    """Retries transient errors with jittered exponential backoff; dead-letters the last one."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = _settings.task_retry_backoff_max
    retry_jitter = True
    max_retries = _settings.task_max_retries
    acks_late = True
    reject_on_worker_lost = True

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        source, delivery_id = kwargs.get("source"), kwargs.get("delivery_id")
        outcome = retval.get("outcome", "processed") if isinstance(retval, dict) else "processed"
        if source and delivery_id:
            runtime.store().set_outcome(source, delivery_id, outcome, retval.get("detail", ""))
        letter = kwargs.get("dead_letter_id")
        if letter:
            runtime.store().drop_dead_letter(letter)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        source, delivery_id = kwargs.get("source"), kwargs.get("delivery_id")
        detail = f"{type(exc).__name__}: {exc}"
        letter_id = runtime.store().add_dead_letter(
            {
                "id": kwargs.get("dead_letter_id") or task_id,
                "task": self.name,
                "args": list(args),
                "kwargs": {k: v for k, v in kwargs.items() if k != "dead_letter_id"},
                "error": detail[:2000],
                "attempts": self.request.retries + 1,
            }
        )
        log.error(
            "task.dead_letter",
            extra={
                "task": self.name,
                "dead_letter_id": letter_id,
                "delivery_id": delivery_id,
                "error": detail[:300],
            },
        )
        if source and delivery_id:
            runtime.store().set_outcome(source, delivery_id, "dead", detail)


def _failed(exc: BaseException) -> dict[str, Any]:
    log.warning("task.failed_permanently", extra={"error": str(exc)[:300]})
    return {"outcome": "failed", "detail": f"{type(exc).__name__}: {exc}"}


@app.task(base=RegpilotTask, name="regpilot.run_completed", bind=True)
def run_completed(
    self: Task,
    run_id: str,
    model_name: str | None = None,
    *,
    source: str = "runs",
    delivery_id: str | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, Any]:
    """Gate, register, alias and retain the model(s) a finished run logged."""
    ctx = runtime.context(source, delivery_id)
    try:
        outcomes = process_run_completed(ctx, run_id, model_name)
    except TRANSIENT_ERRORS:
        raise  # retried by autoretry_for, then a dead letter
    except PERMANENT_ERRORS as exc:
        return _failed(exc)
    return {"outcome": "processed", "results": [o.as_dict() for o in outcomes]}


@app.task(base=RegpilotTask, name="regpilot.model_version_created", bind=True)
def model_version_created(
    self: Task,
    name: str,
    version: str,
    *,
    source: str = "mlflow",
    delivery_id: str | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, Any]:
    """Validate a version registered outside regpilot; tag it and move `challenger`."""
    ctx = runtime.context(source, delivery_id)
    try:
        outcome = process_version_created(ctx, name, int(version))
    except TRANSIENT_ERRORS:
        raise  # retried by autoretry_for, then a dead letter
    except PERMANENT_ERRORS as exc:
        return _failed(exc)
    return {"outcome": "processed", "result": outcome.as_dict()}


# Not a RegpilotTask: a failed sweep is not a dead letter, the next one (beat) covers it.
@app.task(name="regpilot.reconcile")
def reconcile(since_hours: float | None = None) -> dict[str, Any]:
    """Sweep MLflow for versions and runs no webhook brought, and queue them."""
    from tasks.sweep import finding_queuer
    from workflows.reconcile import reconcile as sweep

    ctx = runtime.context("reconcile", None)
    queue = finding_queuer(runtime.store(), app, ctx.settings.task_queue)
    findings, queued = sweep(ctx, since_hours or ctx.settings.reconcile_lookback_hours, queue)
    log.info("reconcile.swept", extra={"outcome": f"found={len(findings)} queued={queued}"})
    return {"outcome": "processed", "found": len(findings), "queued": queued}
