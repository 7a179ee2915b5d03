"""The one task shape: transient errors retry then dead-letter, permanent ones are a result.

Every delivery-driven task uses `RegpilotTask` as its base, so its body is only the call to its
workflow. The retry policy is declared here and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Task

from regpilot.core.notifications import DEAD_LETTER
from regpilot.core.registry_port import NotFound, RegistryError, TransientRegistryError
from regpilot.evaluation import EvaluationInfrastructureError
from regpilot.notifications.delivery import DestinationUnavailable
from regpilot.queue import names
from regpilot.stores.redis_store import LockTimeout
from regpilot.workflows.run_completed import RunNotFinished
from regpilot.workflows.validation import NoLoggedModel, NoModelName
from tasks import runtime
from tasks.celery_app import app

log = logging.getLogger("regpilot.tasks")

# Transient: retried with backoff, then a dead letter.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientRegistryError,
    RunNotFinished,
    LockTimeout,
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionError,
    TimeoutError,
    DestinationUnavailable,
    EvaluationInfrastructureError,  # MLflow down while measuring: nothing was judged
)
# Permanent: a recorded `failed` result, never retried.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    NotFound,
    NoLoggedModel,
    NoModelName,
    RegistryError,
)

_settings = app.conf.regpilot_settings


def failed(exc: BaseException) -> dict[str, Any]:
    """Return the recorded result of a permanent failure."""
    log.warning("task.failed_permanently", extra={"error": str(exc)[:300]})
    return {"outcome": "failed", "detail": f"{type(exc).__name__}: {exc}"}


def found_in(retval: Any) -> dict[str, Any]:
    """Return the verdict and model a task result names, for the event history's columns."""
    if not isinstance(retval, dict):
        return {}
    results = retval.get("results") or ([retval["result"]] if retval.get("result") else [])
    results = [r for r in results if isinstance(r, dict)]
    if not results:
        return {}
    models = [str(r.get("model_name") or r.get("name") or "") for r in results]
    verdicts = [str(r.get("status") or "") for r in results]
    found: dict[str, Any] = {
        "model": ",".join(m for m in models if m),
        "verdict": ",".join(v for v in verdicts if v),
    }
    versions = [r["version"] for r in results if r.get("version") is not None]
    if versions:
        # One version stays a number, as the receiver records it for MLflow's own events.
        found["version"] = versions[0] if len(versions) == 1 else ",".join(map(str, versions))
    return {k: v for k, v in found.items() if v}


class RegpilotTask(Task):  # type: ignore[misc]
    """Retries transient errors with jittered exponential backoff; dead-letters the last one."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 2
    retry_backoff_max = _settings.task_retry_backoff_max
    retry_jitter = True
    max_retries = _settings.task_max_retries
    acks_late = True
    reject_on_worker_lost = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # `run` is wrapped by autoretry_for, so a transient error reaches here only once the
        # retries are spent: re-raise it (on_failure dead-letters it) before the permanent
        # catch, since TransientRegistryError is a RegistryError.
        try:
            return super().__call__(*args, **kwargs)
        except TRANSIENT_ERRORS:
            raise
        except PERMANENT_ERRORS as exc:
            return failed(exc)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        source, delivery_id = kwargs.get("source"), kwargs.get("delivery_id")
        outcome = retval.get("outcome", "processed") if isinstance(retval, dict) else "processed"
        if source and delivery_id:
            runtime.store().set_outcome(
                source, delivery_id, outcome, retval.get("detail", ""), found_in(retval)
            )
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
        self._notify_dead_letter(letter_id, detail, args, kwargs)

    def _notify_dead_letter(self, letter_id: str, detail: str, args: Any, kwargs: Any) -> None:
        # A notification's own dead letter notifies nobody: with a destination down, that
        # would queue another notification to it, and so on.
        if self.name == names.NOTIFY.name:
            return
        fields = names.log_fields(self.name, list(args))
        runtime.notifier()(
            str(fields.get("model") or ""),
            {
                "kind": DEAD_LETTER,
                "trigger": {
                    k: v
                    for k, v in (
                        ("source", kwargs.get("source") or "worker"),
                        ("delivery_id", kwargs.get("delivery_id")),
                    )
                    if v
                },
                "task": self.name,
                "dead_letter_id": letter_id,
                "error": detail[:1000],
                "run_id": fields.get("run_id"),
                "version": fields.get("version"),
            },
        )
