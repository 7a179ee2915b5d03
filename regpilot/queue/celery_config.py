"""The Celery configuration shared by producers and workers, built from one Settings.

Producers (the receiver, the CLI) build an app with no task modules; the worker's app
(`tasks/celery_app.py`) is the same configuration plus the task modules.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from config.settings import Settings
from regpilot.queue.names import RECONCILE


def create_celery(settings: Settings, include: Sequence[str] = ()) -> Celery:
    """Return a Celery app for these settings: Redis broker, late acks, bounded retries."""
    app = Celery("regpilot", include=list(include))
    app.conf.update(
        broker_url=settings.effective_broker_url,
        result_backend=None,
        task_ignore_result=True,
        task_default_queue=settings.task_queue,
        task_serializer="json",
        accept_content=["json"],
        # Tasks are idempotent, so a task whose worker died is redelivered rather than lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "global_keyprefix": settings.key_prefix + "celery:",
            # Must exceed the longest task plus its backoff, or Redis redelivers a running task.
            "visibility_timeout": settings.broker_visibility_timeout,
            # Look for tasks of dead workers every few seconds, not kombu's default ~100 s
            # (a 10 s tick throttled to every 10th), so a redelivery follows the timeout closely.
            "unacked_restore_interval": max(1, min(10, settings.broker_visibility_timeout // 4)),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        worker_hijack_root_logger=False,
        beat_schedule={
            "reconcile": {
                "task": RECONCILE.name,
                "schedule": float(settings.reconcile_interval_seconds),
                "options": {
                    "queue": settings.task_queue,
                    "expires": float(settings.reconcile_interval_seconds),
                },
            }
        },
    )
    app.conf.regpilot_settings = settings
    return app
