"""The notification task: one decision event to one destination, retried like every task."""

from __future__ import annotations

from typing import Any

from celery import Task

from regpilot.notifications.delivery import deliver
from regpilot.queue import names
from tasks import runtime
from tasks.base import RegpilotTask
from tasks.celery_app import app


@app.task(base=RegpilotTask, name=names.NOTIFY.name, bind=True)
def notify(
    self: Task,
    model: str,
    destination: str,
    event: dict[str, Any],
    *,
    source: str | None = None,
    delivery_id: str | None = None,
    dead_letter_id: str | None = None,
) -> dict[str, Any]:
    """Post a decision event to one destination of the model's policy."""
    return deliver(
        runtime.settings(), runtime.policy(), runtime.registry(), model, destination, event
    )
