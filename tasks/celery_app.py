"""The Celery application, configured from Settings (`celery -A tasks.celery_app worker`)."""

from __future__ import annotations

from celery import Celery

from config.settings import Settings

TASK_MODULES = ["tasks.pipeline"]


def create_celery(settings: Settings | None = None) -> Celery:
    """Return a Celery app for these settings: Redis broker, late acks, bounded retries."""
    settings = settings or Settings()
    app = Celery("regpilot", include=TASK_MODULES)
    longest_task = settings.lock_timeout_seconds * 2 + settings.task_retry_backoff_max
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
            "visibility_timeout": max(3600, longest_task * 4),
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        worker_hijack_root_logger=False,
        beat_schedule={},
    )
    app.conf.regpilot_settings = settings
    return app


app = create_celery()
