"""The Databricks tasks: a job run finished, a stage-transition request was opened.

Same task shape as tasks/pipeline.py (`RegpilotTask`): transient errors are retried with backoff
then dead-lettered; permanent ones are a recorded `failed` result.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Task

from config.settings import Settings
from regpilot.queue import names
from regpilot.registry.databricks import DatabricksWorkspace, MlflowJobRunsFinder
from regpilot.workflows.databricks_jobs import process_job_completed
from regpilot.workflows.transition_requests import process_transition_request
from tasks import runtime
from tasks.base import RegpilotTask
from tasks.celery_app import app


@lru_cache(maxsize=1)
def _workspace(settings: Settings) -> DatabricksWorkspace:
    return DatabricksWorkspace.from_settings(settings)


@lru_cache(maxsize=1)
def _finder(settings: Settings) -> MlflowJobRunsFinder:
    return MlflowJobRunsFinder.from_settings(settings)


@app.task(base=RegpilotTask, name=names.DATABRICKS_JOB_COMPLETED.name, bind=True)  # type: ignore[untyped-decorator]
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
    parent = int(parent_run_id) if parent_run_id is not None else None
    workspace, finder = _workspace(ctx.settings), _finder(ctx.settings)
    return process_job_completed(ctx, workspace, finder, int(run_id), parent).as_dict()


@app.task(base=RegpilotTask, name=names.DATABRICKS_TRANSITION_REQUEST.name, bind=True)  # type: ignore[untyped-decorator]
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
    outcome = process_transition_request(ctx, _workspace(ctx.settings), name, int(version), stage)
    return {"outcome": "processed", "detail": outcome.status, "result": outcome.as_dict()}
