"""Real worker processes for the chaos tests: as `regpilot up` runs them, and as compose does.

`ComposeWorker` reads a service of docker-compose.yml (as tests/unit/test_compose.py does) and
runs its command with its environment as a local process: the compose host names (`redis`,
`rabbitmq`, `mlflow`) become the machine's services, the `${...}` secrets become the test's.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import yaml

from config.settings import Settings, child_environment, settings_environment
from regpilot.cli.stack import Secrets, free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?:[:?-][^}]*)?\}")


def rabbitmq_answers(host: str = "127.0.0.1", port: int = 5672) -> bool:
    """Tell whether something accepts connections on RabbitMQ's port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def delete_rabbitmq_queues(*queues: str) -> None:
    """Delete a test's queues from the machine's RabbitMQ (they are durable)."""
    from kombu import Connection

    with Connection(RABBITMQ_URL, connect_timeout=5) as connection:
        channel = connection.default_channel
        for queue in queues:
            channel.queue_delete(queue)


def pool_children(pid: int) -> list[int]:
    """Return the process ids whose parent is `pid` (a prefork worker's pool processes)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the ppid follows the last ')'.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


class LocalWorker:
    """A worker command running as a local process in its own process group."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            argv,
            env=child_environment({**env, "PYTHONUNBUFFERED": "1"}),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while b" ready." not in log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def text(self) -> str:
        """Return everything the worker has logged."""
        return self.log_path.read_text(errors="replace")

    def has_started(self, task_name: str) -> bool:
        """Tell whether the worker logged that it received a task of this name."""
        return any(task_name in line and "received" in line for line in self.text().splitlines())

    def kill_everything(self) -> None:
        """SIGKILL the worker and its pool processes at once (OOM kill, node eviction)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the worker (warm shutdown), killing it if it does not stop."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if not self.log.closed:
            self.log.close()


class DefaultWorker(LocalWorker):
    """`regpilot worker -c 2`, exactly as `regpilot up` starts it, with these settings."""

    def __init__(self, settings: Settings, log_path: Path, *extra: str) -> None:
        self.settings = settings
        argv = [sys.executable, "-m", "regpilot.cli.main", "worker", "-c", "2", *extra]
        super().__init__(argv, settings_environment(settings), log_path)


_DEFAULTED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}")


def compose_service(name: str) -> dict[str, Any]:
    """Return one service of docker-compose.yml, YAML anchors resolved."""
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services[name]


def _local_url(url: str, redis_url: str, mlflow_url: str) -> str:
    """Return a compose service URL pointed at the machine's service of the same kind."""
    parsed = urlparse(url)
    if parsed.scheme.startswith("redis"):
        return redis_url
    if parsed.scheme.startswith("amqp"):
        return RABBITMQ_URL
    if parsed.hostname == "mlflow":
        return mlflow_url
    return url


def compose_environment(
    service: str,
    redis_url: str,
    mlflow_url: str,
    secrets: Secrets,
    identity: dict[str, str],
    state: Path,
) -> dict[str, str]:
    """Return a compose service's environment as it would be inside the stack, made local."""
    filled = {
        "REGPILOT_MLFLOW_WEBHOOK_SECRET": secrets.mlflow_webhook_secret,
        "REGPILOT_RUN_WEBHOOK_SECRET": secrets.run_webhook_secret,
        "REGPILOT_OPS_TOKEN": "ops-" + "x" * 40,
    }
    env: dict[str, str] = {}
    for key, value in (compose_service(service).get("environment") or {}).items():
        text = str(value)
        # Compose's own `${NAME:-default}`: with no .env (the tests' case) it gives the default.
        text = _DEFAULTED.sub(lambda match: match.group(1), text)
        if key in filled:
            text = filled[key]
        elif "://" in text:
            text = _local_url(_INTERPOLATION.sub("secret", text), redis_url, mlflow_url)
        env[key] = text
    env["REGPILOT_POLICY_FILE"] = str(ROOT / "tests" / "fixtures" / "policy.yaml")
    env["REGPILOT_STATE_DIR"] = str(state)
    if "REGPILOT_WORKER_METRICS_PORT" in env:  # one port per container there; many here
        env["REGPILOT_WORKER_METRICS_PORT"] = str(free_port())
        env["REGPILOT_WORKER_METRICS_HOST"] = "127.0.0.1"
    if "PROMETHEUS_MULTIPROC_DIR" in env:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(state / f"metrics-{service}-{uuid.uuid4().hex[:6]}")
    # Not in the compose file (one stack per host): a test's own keys and queues.
    env["REGPILOT_KEY_PREFIX"] = identity["key_prefix"]
    env["REGPILOT_TASK_QUEUE"] = identity["task_queue"]
    return env


def settings_from(env: dict[str, str]) -> Settings:
    """Return the Settings a process with exactly this environment reads."""
    ours = {k: v for k, v in os.environ.items() if not k.startswith("REGPILOT_")}
    with mock.patch.dict(os.environ, {**ours, **env}, clear=True):
        return Settings()


class ComposeWorker(LocalWorker):
    """A compose service's command and environment, run as a local process."""

    def __init__(
        self,
        service: str,
        log_path: Path,
        redis_url: str,
        mlflow_url: str,
        secrets: Secrets,
        identity: dict[str, str],
        state: Path,
    ) -> None:
        env = compose_environment(service, redis_url, mlflow_url, secrets, identity, state)
        self.settings = settings_from(env)
        command = compose_service(service)["command"]
        argv = list(command) if isinstance(command, list) else shlex.split(command)
        assert argv[0] == "regpilot", f"{service} does not run regpilot: {argv}"
        # `%h` is the container's own host name there (one per container); here many workers
        # share one host, and RabbitMQ lets only one node hold `<name>@<host>.celery.pidbox`.
        container = f"%h-{uuid.uuid4().hex[:6]}"
        argv = [arg.replace("@%h", f"@{container}") for arg in argv]
        super().__init__([sys.executable, "-m", "regpilot.cli.main", *argv[1:]], env, log_path)
