"""The benchmark's own processes: an MLflow server, gunicorn receivers, Celery workers.

Everything runs on loopback, under a private Redis key prefix and a private state folder, and is
stopped and deleted at the end, whatever happened.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from config.settings import Settings, child_environment, settings_environment
from regpilot.cli.stack import LocalStack, Secrets, free_port, wait_http

ROOT = Path(__file__).resolve().parents[1]
BENCH_REDIS_DB = 14
GUNICORN_WORKERS = 2


def gunicorn_argv(app_spec: str, port: int, workers: int = GUNICORN_WORKERS) -> list[str]:
    """Return the gunicorn command every receiver variant runs with (the same for all three)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:handlers.gunicorn_conf",
        "--worker-class",
        "sync",
        "--workers",
        str(workers),
        "--timeout",
        "30",
        "--bind",
        f"127.0.0.1:{port}",
        app_spec,
    ]


@dataclass
class BenchStack:
    """Start, watch and stop the benchmark's processes; own one Redis key prefix."""

    state_dir: Path
    redis_url: str = f"redis://127.0.0.1:6379/{BENCH_REDIS_DB}"
    prefix: str = field(default_factory=lambda: f"regpilot-bench-{uuid.uuid4().hex[:8]}:")
    secrets: Secrets = field(
        default_factory=lambda: Secrets(
            mlflow_webhook_secret="bench-" + uuid.uuid4().hex,
            run_webhook_secret="whsec_" + base64.b64encode(os.urandom(24)).decode(),
            fernet_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        )
    )
    mlflow_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.state_dir / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self._mlflow = LocalStack(self.state_dir / "mlflow-stack")
        self.redis = redis.Redis.from_url(self.redis_url)

    # --- settings -----------------------------------------------------------------------------

    def settings(self, **overrides: object) -> Settings:
        """Return Settings for our parts: private prefix and queue, the bench's secrets."""
        values: dict[str, object] = {
            "mlflow_tracking_uri": self.mlflow_url or "http://127.0.0.1:5000",
            "redis_url": self.redis_url,
            "key_prefix": self.prefix,
            "task_queue": self.prefix.rstrip(":"),
            "mlflow_webhook_secret": self.secrets.mlflow_webhook_secret,
            "run_webhook_secret": self.secrets.run_webhook_secret,
            "state_dir": self.state_dir / "regpilot",
            "log_level": "INFO",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    # --- processes ----------------------------------------------------------------------------

    def start_mlflow(self) -> str:
        """Start `mlflow server --workers 1` on sqlite (the setup the docs recommend)."""
        self.mlflow_url = self._mlflow.start_mlflow(self.secrets, workers=1)
        return self.mlflow_url

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a process in its own session, its output in logs/<name>.log."""
        self.stop(name)
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=child_environment(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_receiver(self, name: str, app_spec: str, settings: Settings) -> str:
        """Start a receiver variant under gunicorn (sync x2); return its base URL."""
        port = free_port()
        env = {**settings_environment(settings), "PYTHONUNBUFFERED": "1"}
        process = self.spawn(name, gunicorn_argv(app_spec, port), env)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", timeout=60, process=process)
        return url

    def start_worker(self, name: str, settings: Settings, concurrency: int = 2) -> None:
        """Start `regpilot worker -c N` (Celery prefork) and wait until it takes tasks."""
        env = {**settings_environment(settings), "PYTHONUNBUFFERED": "1"}
        argv = [sys.executable, "-m", "regpilot.cli.main", "worker", "-c", str(concurrency)]
        argv += ["--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h"]
        process = self.spawn(name, argv, env)
        log = self.log_dir / f"{name}.log"
        deadline = time.monotonic() + 120
        while b"ready." not in log.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, name: str) -> None:
        """Stop one process group politely, then firmly."""
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def close(self) -> None:
        """Stop everything and delete every key under the prefix."""
        for name in list(self.processes):
            self.stop(name)
        self._mlflow.stop()
        self.delete_keys()

    # --- Redis --------------------------------------------------------------------------------

    def delete_keys(self, pattern: str = "*") -> int:
        """Delete the keys under our prefix matching `pattern`; return how many."""
        deleted = 0
        batch: list[bytes] = []
        for key in self.redis.scan_iter(match=f"{self.prefix}{pattern}", count=5000):
            batch.append(key)
            if len(batch) >= 2000:
                deleted += int(self.redis.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(self.redis.unlink(*batch))
        return deleted

    def queue_length(self, settings: Settings) -> int:
        """Return how many messages wait in the Celery queue of `settings`."""
        return int(self.redis.llen(f"{settings.key_prefix}celery:{settings.task_queue}"))
