"""The Databricks tasks: a job run finished, a stage-transition request was opened.

Same retry rules as tasks/pipeline.py (RegpilotTask): transient errors are retried with backoff
then dead-lettered; permanent ones are a recorded `failed` result.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Task

from config.settings import Settings
from registry.databricks import DatabricksWorkspace, MlflowJobRunsFinder
from tasks import runtime
from tasks.celery_app import app
from tasks.pipeline import PERMANENT_ERRORS, TRANSIENT_ERRORS, RegpilotTask
from workflows.databricks_jobs import process_job_completed
from workflows.transition_requests import process_transition_request

log = logging.getLogger("regpilot.tasks")

JOB_COMPLETED = "regpilot.databricks_job_completed"
TRANSITION_REQUEST = "regpilot.databricks_transition_request"


@lru_cache(maxsize=1)
def _workspace(settings: Settings) -> DatabricksWorkspace:
    return DatabricksWorkspace.from_settings(settings)


@lru_cache(maxsize=1)
def _finder(settings: Settings) -> MlflowJobRunsFinder:
    return MlflowJobRunsFinder.from_settings(settings)


def _failed(exc: BaseException) -> dict[str, Any]:
    log.warning("task.failed_permanently", extra={"error": str(exc)[:300]})
    return {"outcome": "failed", "detail": f"{type(exc).__name__}: {exc}"}


@app.task(base=RegpilotTask, name=JOB_COMPLETED, bind=True)  # type: ignore[untyped-decorator]
def databricks_job_completed(
    self: Task,
    run_id: int,
    parent_run_id: int | None = None,
    *,
    source: str = "databricks-jobs",
    delivery_id: str | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, Any]:
    """Read the job run back, find its MLflow runs and send each through the run path."""
    ctx = runtime.context(source, delivery_id)
    try:
        outcome = process_job_completed(
            ctx,
            _workspace(ctx.settings),
            _finder(ctx.settings),
            int(run_id),
            int(parent_run_id) if parent_run_id is not None else None,
        )
    except TRANSIENT_ERRORS:
        raise  # TransientRegistryError is a RegistryError: re-raise before the permanent catch
    except PERMANENT_ERRORS as exc:
        return _failed(exc)
    return outcome.as_dict()


@app.task(base=RegpilotTask, name=TRANSITION_REQUEST, bind=True)  # type: ignore[untyped-decorator]
def databricks_transition_request(
    self: Task,
    name: str,
    version: str,
    stage: str | None = None,
    *,
    source: str = "databricks-registry",
    delivery_id: str | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, Any]:
    """Judge the version and approve or reject its stage-transition request with the verdict."""
    ctx = runtime.context(source, delivery_id)
    try:
        outcome = process_transition_request(
            ctx, _workspace(ctx.settings), name, int(version), stage
        )
    except TRANSIENT_ERRORS:
        raise  # retried by autoretry_for, then a dead letter
    except PERMANENT_ERRORS as exc:
        return _failed(exc)
    return {"outcome": "processed", "detail": outcome.status, "result": outcome.as_dict()}
