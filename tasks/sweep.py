"""Queue what a reconciliation sweep found, through the same claim-then-enqueue path."""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from stores.redis_store import RedisStore
from tasks.dispatch import dispatch
from workflows.reconcile import Finding

SOURCE = "reconcile"


def finding_queuer(store: RedisStore, celery: Celery, queue: str) -> Callable[[Finding], bool]:
    """Return a function that queues one finding, once per finding, True if it was queued."""

    def queue_finding(finding: Finding) -> bool:
        if finding.kind == "version":
            task, args = "regpilot.model_version_created", [finding.name, str(finding.version)]
            summary = {
                "event": "reconcile.version",
                "model": finding.name,
                "version": finding.version,
            }
        else:
            task, args = "regpilot.run_completed", [finding.run_id, finding.name]
            summary = {"event": "reconcile.run", "model": finding.name, "run_id": finding.run_id}
        task_id = dispatch(
            store,
            celery,
            queue,
            source=SOURCE,
            delivery_id=finding.delivery_id,
            task_name=task,
            args=args,
            summary=summary,
        )
        return task_id is not None

    return queue_finding
