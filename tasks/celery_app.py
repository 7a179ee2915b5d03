"""The worker's Celery app (`celery -A tasks.celery_app worker`): Settings built once, here."""

from __future__ import annotations

from config.settings import Settings
from regpilot.queue.celery_config import create_celery
from tasks import signals as _signals  # noqa: F401  (connects task metrics and log context)

TASK_MODULES = (
    "tasks.pipeline",
    "tasks.databricks_tasks",
    "tasks.notify_tasks",
    "tasks.evaluation_tasks",
)

app = create_celery(Settings(), include=TASK_MODULES)
