"""Queue what a reconciliation sweep found, through the same claim-then-enqueue path."""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from regpilot.queue import names
from regpilot.queue.dispatch import dispatch
from regpilot.stores.redis_store import RedisStore
from regpilot.workflows.reconcile import Finding

SOURCE = "reconcile"


def finding_queuer(store: RedisStore, celery: Celery, queue: str) -> Callable[[Finding], bool]:
    """Return a function that queues one finding, once per finding, True if it was queued."""

    def queue_finding(finding: Finding) -> bool:
        if finding.kind == "version":
            task, args = names.MODEL_VERSION_CREATED, [finding.name, str(finding.version)]
            summary = {
                "event": "reconcile.version",
                "model": finding.name,
                "version": finding.version,
            }
        else:
            task, args = names.RUN_COMPLETED, [finding.run_id, finding.name]
            summary = {"event": "reconcile.run", "model": finding.name, "run_id": finding.run_id}
        task_id = dispatch(
            store,
            celery,
            queue,
            source=SOURCE,
            delivery_id=finding.delivery_id,
            task=task,
            args=args,
            summary=summary,
        )
        return task_id is not None

    return queue_finding
