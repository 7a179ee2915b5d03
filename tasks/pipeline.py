"""The registry tasks. Each one takes ids, re-reads state and is safe to run twice."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from regpilot.queue import names
from regpilot.queue.sweep import finding_queuer
from regpilot.workflows.reconcile import reconcile as sweep
from regpilot.workflows.run_completed import process_run_completed
from regpilot.workflows.version_created import process_version_created
from tasks import runtime
from tasks.base import RegpilotTask
from tasks.celery_app import app

log = logging.getLogger("regpilot.tasks")


@app.task(base=RegpilotTask, name=names.RUN_COMPLETED.name, bind=True)
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
    outcomes = process_run_completed(runtime.context(source, delivery_id), run_id, model_name)
    return {"outcome": "processed", "results": [o.as_dict() for o in outcomes]}


@app.task(base=RegpilotTask, name=names.MODEL_VERSION_CREATED.name, bind=True)
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
    outcome = process_version_created(runtime.context(source, delivery_id), name, int(version))
    return {"outcome": "processed", "result": outcome.as_dict()}


# Not a RegpilotTask: a failed sweep is not a dead letter, the next one (beat) covers it.
@app.task(name=names.RECONCILE.name)
def reconcile(since_hours: float | None = None) -> dict[str, Any]:
    """Sweep MLflow for versions and runs no webhook brought, and queue them."""
    ctx = runtime.context("reconcile", None)
    runtime.store().mark_reconciled()  # beat's heartbeat, for `regpilot doctor`
    queue = finding_queuer(runtime.store(), app, ctx.settings.task_queue)
    findings, queued = sweep(ctx, since_hours or ctx.settings.reconcile_lookback_hours, queue)
    log.info("reconcile.swept", extra={"outcome": f"found={len(findings)} queued={queued}"})
    return {"outcome": "processed", "found": len(findings), "queued": queued}
