"""Session fixtures: a real MLflow server, the real Redis, our receiver and a real Celery worker.

Redis: the tests use their own database number and a unique key prefix, and delete only the keys
under that prefix when the session ends. Under pytest-xdist each worker process is a session of its
own: its own MLflow server, receiver, Celery worker, key prefix and task queue (the queue is named
after the prefix), so workers never take each other's tasks.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from config.settings import Settings, child_environment, settings_environment
from regpilot.cli.stack import (
    LocalStack,
    Secrets,
    free_port,
    redis_answers,
    throwaway_redis_argv,
)
from tests.scheduling import DEFAULT_SLOW_SECONDS, handout_order

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
TEST_REDIS_DB = 13
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis (db 13), or one started for the session if none answers."""
    if redis_answers("127.0.0.1", 6379):
        yield f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("no Redis on 127.0.0.1:6379 and no redis-server on PATH")
    port = free_port()
    process = subprocess.Popen(
        throwaway_redis_argv(server, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not redis_answers("127.0.0.1", port):
        if time.monotonic() > deadline:
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/{TEST_REDIS_DB}"
    process.terminate()
    process.wait(timeout=10)


def process_tag() -> str:
    """Name this pytest process: its xdist worker id (`gw0`, `gw1`, ...) or `main` without xdist.

    Under `pytest -n N` every worker process builds its own session fixtures (MLflow server,
    receiver, Celery worker); this tag goes into the names they share on the machine (Redis key
    prefix, Celery queue) so that a look at Redis tells which process owns what. Uniqueness itself
    comes from the random part next to it: other sessions on the machine use the same worker ids.
    """
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of our own; every key under it is deleted at the end of the session."""
    prefix = f"regpilot-test-{process_tag()}-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis_lib.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    """Fixed-per-session secrets for MLflow webhooks, run webhooks and the Fernet key."""
    return Secrets(
        mlflow_webhook_secret="mlflow-" + uuid.uuid4().hex,
        run_webhook_secret="whsec_" + base64.b64encode(os.urandom(24)).decode(),
        fernet_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )


@pytest.fixture(scope="session")
def receiver_port() -> int:
    """The receiver's port, chosen before MLflow starts so that its webhook can come first."""
    return free_port()


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, secrets: Secrets, receiver_port: int
) -> Iterator[str]:
    """A real `mlflow server` (sqlite, one worker, webhook env vars) for the whole session.

    Its webhook to the receiver is installed before any test can create a model version: the
    server caches its webhook list for 60 s (MLFLOW_WEBHOOK_CACHE_TTL), so a webhook installed
    after the first event stays unseen for up to a minute (docs/RELIABILITY.md). Which test comes
    first differs between pytest-xdist workers; this makes it not matter. Until the receiver
    listens, deliveries are refused and MLflow drops them, as it would for any receiver down.
    """
    import mlflow

    from regpilot.cli.webhooks import install_mlflow_webhook

    stack = LocalStack(tmp_path_factory.mktemp("mlflow-state"))
    url = stack.start_mlflow(secrets)
    install_mlflow_webhook(
        url, f"http://127.0.0.1:{receiver_port}/webhooks/mlflow", secrets.mlflow_webhook_secret
    )
    mlflow.set_tracking_uri(url)
    os.environ["MLFLOW_TRACKING_URI"] = url
    yield url
    stack.stop()


@pytest.fixture(scope="session")
def settings(
    mlflow_server: str,
    redis_url: str,
    key_prefix: str,
    secrets: Secrets,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings shared by the receiver, the worker and the tests."""
    return Settings(
        mlflow_tracking_uri=mlflow_server,
        redis_url=redis_url,
        key_prefix=key_prefix,
        task_queue=key_prefix.rstrip(":"),
        mlflow_webhook_secret=secrets.mlflow_webhook_secret,
        run_webhook_secret=secrets.run_webhook_secret,
        policy_file=FIXTURES / "policy.yaml",
        task_max_retries=3,
        task_retry_backoff_max=4,
        state_dir=tmp_path_factory.mktemp("state"),
    )


class ThreadedReceiver:
    """Our Flask receiver on a real HTTP port, so MLflow can deliver to it."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        from werkzeug.serving import make_server

        from handlers import create_app

        self.app = create_app(settings, configure_logging=False)
        self.port = port or free_port()
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="session")
def receiver(settings: Settings, receiver_port: int) -> Iterator[ThreadedReceiver]:
    """The receiver, serving for the whole session on the port MLflow's webhook names."""
    server = ThreadedReceiver(settings, receiver_port)
    yield server
    server.stop()


class WorkerProcess:
    """A real `regpilot worker` (Celery prefork) process."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        concurrency: int = 2,
        name: str | None = None,
        role: str = "all",
    ) -> None:
        self.log_path = log_path
        self.name = name or f"test-{uuid.uuid4().hex[:6]}"
        env = child_environment({**settings_environment(settings), "PYTHONUNBUFFERED": "1"})
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "regpilot.cli.main",
                "worker",
                "-c",
                str(concurrency),
                "--hostname",
                f"{self.name}@%h",
                "--role",
                role,
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while b"ready." not in log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One real Celery worker process for the session."""
    process = WorkerProcess(settings, tmp_path_factory.mktemp("worker") / "worker.log")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def mlflow_webhook(mlflow_server: str, receiver: ThreadedReceiver, secrets: Secrets) -> str:
    """MLflow's own webhook, pointed at our receiver and signed with our secret.

    The server fixture installed it already; installing again (an update to the same URL)
    returns its id.
    """
    from regpilot.cli.webhooks import install_mlflow_webhook

    hook_id, _ = install_mlflow_webhook(
        mlflow_server, f"{receiver.url}/webhooks/mlflow", secrets.mlflow_webhook_secret
    )
    return hook_id


@pytest.fixture(scope="session")
def stack(
    mlflow_server: str,
    receiver: ThreadedReceiver,
    worker: WorkerProcess,
    mlflow_webhook: str,
    settings: Settings,
) -> dict[str, object]:
    """Everything running: MLflow (with its webhook), the receiver and a worker."""
    return {"mlflow": mlflow_server, "receiver": receiver, "worker": worker, "settings": settings}


@pytest.fixture()
def store(settings: Settings) -> object:
    """The Redis store the receiver and worker use."""
    from regpilot.stores.redis_store import RedisStore

    return RedisStore.from_settings(settings)


@pytest.fixture()
def client(mlflow_server: str) -> object:
    """An MlflowClient on the session's server."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server)


# --- parallel runs (pytest-xdist) ----------------------------------------------------------------
# `make test` runs `pytest -n 6 --dist loadgroup --no-loadscope-reorder`. Tests that share module
# fixtures which start processes (the Databricks stub and its worker, the restartable and pausable
# MLflow servers, the evaluation workers) carry an `xdist_group` mark, so one worker process starts
# those once. The longest units are handed out first, each with a short one behind it
# (tests/scheduling.py), so two long ones never queue in one process and none starts last.


EVALUATION_TESTS = Path(__file__).parent / "evaluation"


def _put_back_environ(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@pytest.fixture(autouse=True)
def restore_mlflow_tracking_uri() -> Iterator[None]:
    """Put back the process's tracking and registry URIs after each test.

    Some tests point MLflow at a server of their own (a module's restartable one, the engine's),
    which is gone later; the next test in this process (any order, under xdist) trains on the
    session's server. A receiver or registry adapter built in this process for the workspace
    registry sets MLflow's global registry URI to `databricks` (and MLFLOW_REGISTRY_URI): the next
    test's `register_model` would go there. Only restores what MLflow was already imported with.
    """
    mlflow = sys.modules.get("mlflow")
    if mlflow is None:
        yield
        return
    from mlflow.tracking._model_registry import utils as registry_utils

    previous, environ = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    # The registry URI as set (None: follow the tracking URI), not the one it resolves to.
    registry, registry_environ = registry_utils._registry_uri, os.environ.get("MLFLOW_REGISTRY_URI")
    yield
    mlflow.set_tracking_uri(previous)
    _put_back_environ("MLFLOW_TRACKING_URI", environ)
    registry_utils._registry_uri = registry
    _put_back_environ("MLFLOW_REGISTRY_URI", registry_environ)


def _scope(item: pytest.Item) -> str:
    """The work unit pytest-xdist hands out: the test's `xdist_group`, or the test alone."""
    group = item.get_closest_marker("xdist_group")
    return str(group.args[0]) if group is not None and group.args else item.nodeid


def _seconds(item: pytest.Item) -> float:
    """The longest `slow` mark on the test (a parametrised case may carry one of its own)."""
    marks = item.iter_markers("slow")
    return max((float(m.args[0]) if m.args else DEFAULT_SLOW_SECONDS for m in marks), default=0.0)


# tryfirst: pytest-xdist reads the `xdist_group` marks in this same hook (it appends the group to
# each test id); a mark added after it has run would leave the engine's tests ungrouped, and every
# pytest process would start the engine's MLflow server and log its models again.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keep the engine's server tests in one process (one MLflow server); order the hand-out."""
    for item in items:
        in_engine_folder = EVALUATION_TESTS in Path(str(item.path)).parents
        if in_engine_folder and "eval_tracking_uri" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("evaluation-engine"))
    # Every xdist process computes the same order (pytest-xdist requires identical collections).
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    items[:] = handout_order(items, _scope, _seconds, workers)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Refuse to run a parallel session whose `xdist_group` marks are not in effect.

    Under `--dist loadgroup` pytest-xdist appends each test's group to its id, and the scheduler
    sends a group's tests to one process. If a pytest or xdist release breaks that (pytest 9.2
    did), every process would build the groups' module fixtures (servers, workers) again.
    """
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid
    ]
    if lost:
        raise pytest.UsageError(
            f"--dist loadgroup is not grouping (e.g. {lost[0]}): check the pytest and "
            "pytest-xdist versions against the pin in pyproject.toml"
        )
