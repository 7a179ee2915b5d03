"""The evaluation task: measure one candidate on its policy's dataset, then apply its verdict."""

from __future__ import annotations

from typing import Any

from celery import Task

from regpilot.queue import names
from regpilot.workflows.run_completed import process_run_completed
from regpilot.workflows.version_created import process_version_created
from tasks import runtime
from tasks.base import RegpilotTask
from tasks.celery_app import app


@app.task(base=RegpilotTask, name=names.EVALUATE_MODEL.name, bind=True)
def evaluate_model(
    self: Task,
    name: str,
    run_id: str | None = None,
    model_uri: str | None = None,
    version: int | str | None = None,
    *,
    source: str = "runs",
    delivery_id: str | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, Any]:
    """Measure a run's logged model (or a registered version) and gate, register, alias it.

    A model that does not load, raises or times out is a FAILED verdict (a result); MLflow
    unreachable is transient (retried). A redelivery reuses the cached evaluation.
    """
    ctx = runtime.context(source, delivery_id, evaluate=True)
    if version is not None:
        outcome = process_version_created(ctx, name, int(version))
        return {"outcome": "processed", "result": outcome.as_dict()}
    if run_id is None:
        return {"outcome": "failed", "detail": "evaluate_model needs a run_id or a version"}
    outcomes = process_run_completed(ctx, run_id, name, model_uri=model_uri)
    return {"outcome": "processed", "results": [o.as_dict() for o in outcomes]}
