"""The Celery application, configured from Settings (`celery -A tasks.celery_app worker`)."""

from __future__ import annotations

from celery import Celery

from config.settings import Settings
from tasks import signals as _signals  # noqa: F401  (connects task metrics and log context)

TASK_MODULES = ["tasks.pipeline", "tasks.databricks_tasks"]


def create_celery(settings: Settings | None = None) -> Celery:
    """Return a Celery app for these settings: Redis broker, late acks, bounded retries."""
    settings = settings or Settings()
    app = Celery("regpilot", include=TASK_MODULES)
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
                "task": "regpilot.reconcile",
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


app = create_celery()
