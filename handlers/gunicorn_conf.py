"""gunicorn hooks of the receiver (`gunicorn -c python:handlers.gunicorn_conf ...`).

They keep /metrics right with several gunicorn workers: the master prepares the multiprocess
directory (PROMETHEUS_MULTIPROC_DIR, or a private one) before it forks, and forgets the live
samples of each worker that exits. Bind address and worker count stay on the command line.
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from observability.metrics import mark_process_dead, use_multiprocess_dir

worker_class = "sync"
timeout = 30


def on_starting(server: Any) -> None:
    """Prepare the metrics directory in the master, before any worker exists."""
    use_multiprocess_dir(Settings().prometheus_multiproc_dir)


def child_exit(server: Any, worker: Any) -> None:
    """Forget the live samples of a worker process that exited."""
    mark_process_dead(worker.pid)
