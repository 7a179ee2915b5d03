"""gunicorn hooks of the receiver (`gunicorn -c python:handlers.gunicorn_conf ...`).

They keep /metrics right with several gunicorn workers: the master prepares the multiprocess
directory (PROMETHEUS_MULTIPROC_DIR, or a private one) before it forks, and forgets the live
samples of each worker that exits. With REGPILOT_LOG_FORMAT=json gunicorn's own lines are JSON
too. Bind address and worker count stay on the command line.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from regpilot.observability.metrics import mark_process_dead, use_multiprocess_dir


def gunicorn_logconfig(log_format: str) -> dict[str, Any]:
    """Return gunicorn's `logconfig_dict`: our JSON lines, or gunicorn's default for text."""
    if log_format != "json":
        return {}
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "regpilot.observability.logging.JsonFormatter"}},
        "handlers": {"console": handler},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        },
    }


_settings = Settings()
worker_class = "sync"
timeout = 30
logconfig_dict = gunicorn_logconfig(_settings.log_format)


def on_starting(server: Any) -> None:
    """Prepare the metrics directory in the master, before any worker exists."""
    use_multiprocess_dir(_settings.prometheus_multiproc_dir)


def child_exit(server: Any, worker: Any) -> None:
    """Forget the live samples of a worker process that exited."""
    mark_process_dead(worker.pid)
