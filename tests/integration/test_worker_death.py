"""A worker killed mid-task, with the settings a user gets: its event finishes once, in time.

Two configurations, both with every timeout at its shipped default:
- zero-setup: `Settings()` as the README's `regpilot up` / `make demo` gives it (Redis broker);
- production: the `worker` service of docker-compose.yml (RabbitMQ broker, Redis for state),
  its command and environment run as local processes against the machine's RabbitMQ and Redis.

Each test pauses MLflow so the task blocks on its first MLflow call, kills the worker (the whole
process group, or only the pool child running the task), and measures the time from the kill to
the recorded outcome. The figures are printed (run with `-s`) and quoted in docs/RELIABILITY.md.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from config.settings import Settings
from handlers import create_app
from regpilot.cli.stack import Secrets
from regpilot.stores.redis_store import RedisStore
from tests.conftest import FIXTURES
from tests.integration.test_reliability import RestartableMlflow
from tests.support import PASSING, run_webhook, train_run, wait_until
from tests.worker_processes import (
    ComposeWorker,
    DefaultWorker,
    LocalWorker,
    compose_environment,
    delete_rabbitmq_queues,
    pool_children,
    rabbitmq_answers,
    settings_from,
)

pytestmark = pytest.mark.integration
# The tests that pause MLflow share one pausable server (module fixture): one pytest process runs
# them all, so a parallel run starts that server once rather than in every process.
PAUSABLE = pytest.mark.xdist_group("pausable-mlflow")

# The promise in the README: a killed worker's event is finished within 3 minutes of the kill.
BOUND_SECONDS = 180


@pytest.fixture(scope="module")
def pausable_mlflow(tmp_path_factory, secrets: Secrets) -> Iterator[RestartableMlflow]:
    server = RestartableMlflow(tmp_path_factory.mktemp("death-mlflow"), secrets)
    yield server
    server.resume()
    server.stack.stop()


@pytest.fixture()
def identity(redis_url) -> Iterator[dict[str, str]]:
    """A key prefix and queue of this test's own; their Redis keys are deleted afterwards."""
    prefix = f"regpilot-test-death-{uuid.uuid4().hex[:8]}:"
    yield {"key_prefix": prefix, "task_queue": prefix.rstrip(":")}
    client = redis_lib.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def _zero_setup_settings(
    redis_url: str, mlflow_url: str, secrets: Secrets, identity: dict[str, str], state: Path
) -> Settings:
    """Return `Settings()` with only where things are changed: every knob at its default."""
    return Settings(
        mlflow_tracking_uri=mlflow_url,
        redis_url=redis_url,
        run_webhook_secret=secrets.run_webhook_secret,
        policy_file=FIXTURES / "policy.yaml",
        state_dir=state,
        **identity,
    )


def _send(settings: Settings, run_id: str, model: str) -> str:
    http = create_app(settings, configure_logging=False).test_client()
    body, headers = run_webhook(settings.run_webhook_secrets[0], run_id, model)
    response = http.post("/webhooks/runs", data=body, headers=headers)
    assert response.status_code == 202, response.json
    return str(response.json["delivery_id"])


def _outcome(store: RedisStore, delivery_id: str) -> str:
    for event in store.events(200):
        if event.get("delivery_id") == delivery_id:
            return str(event.get("outcome", ""))
    return ""


def _kill_mid_task(
    mlflow: RestartableMlflow,
    settings: Settings,
    start_worker: Any,
    tmp_path: Path,
    model: str,
    whole_worker: bool,
    workers: list[LocalWorker],
) -> float:
    """Kill a worker while it runs the task; return the seconds from the kill to the outcome.

    Every worker started is appended to `workers`, for the caller to stop.
    """
    run_id = train_run(PASSING, experiment=model)
    store = RedisStore.from_settings(settings)
    first = start_worker(tmp_path / "first.log")
    workers.append(first)
    mlflow.pause()  # the task blocks on its first MLflow call: "mid-task"
    try:
        delivery = _send(settings, run_id, model)
        wait_until(
            lambda: first.has_started("regpilot.run_completed"),
            timeout=60,
            message="the first worker took the task",
        )
        if whole_worker:
            first.kill_everything()
        else:
            # Every pool process (the one running the task among them); the parent lives on.
            for child in pool_children(first.process.pid):
                os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        mlflow.resume()
    if whole_worker:
        # What compose's `restart: unless-stopped` (or a second replica) gives: a new worker.
        workers.append(start_worker(tmp_path / "second.log"))
    wait_until(
        lambda: _outcome(store, delivery) == "processed",
        timeout=BOUND_SECONDS + 60,
        interval=0.5,
        message="the killed worker's task processed",
    )
    return time.monotonic() - killed_at


def _assert_once(store: RedisStore, client: Any, model: str) -> None:
    assert len(client.search_model_versions(f"name = '{model}'")) == 1
    registrations = [d for d in store.decisions(model, 100) if d["kind"] == "registration"]
    assert len(registrations) == 1


@PAUSABLE
@pytest.mark.parametrize("whole_worker", [True, False], ids=["whole-worker", "pool-child"])
def test_zero_setup_redis_default_finishes_a_killed_task_once_within_the_bound(
    pausable_mlflow, redis_url, secrets, identity, tmp_path, whole_worker
):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(pausable_mlflow.url)
    settings = _zero_setup_settings(redis_url, pausable_mlflow.url, secrets, identity, tmp_path)
    model = f"death-redis-{'whole' if whole_worker else 'child'}"
    workers: list[LocalWorker] = []
    try:
        elapsed = _kill_mid_task(
            pausable_mlflow,
            settings,
            lambda log: DefaultWorker(settings, log),
            tmp_path,
            model,
            whole_worker,
            workers,
        )
    finally:
        for worker in workers:
            worker.stop()
    print(f"\nzero-setup Redis, {model}: finished {elapsed:.1f} s after the kill", file=sys.stderr)
    assert elapsed < BOUND_SECONDS
    _assert_once(RedisStore.from_settings(settings), MlflowClient(pausable_mlflow.url), model)


@PAUSABLE
@pytest.mark.parametrize("whole_worker", [True, False], ids=["whole-worker", "pool-child"])
def test_compose_configuration_finishes_a_killed_task_once_within_the_bound(
    pausable_mlflow, redis_url, secrets, identity, tmp_path, whole_worker
):
    import mlflow
    from mlflow import MlflowClient

    if not rabbitmq_answers():
        pytest.fail("no RabbitMQ on 127.0.0.1:5672 (.ci/run starts it)")
    mlflow.set_tracking_uri(pausable_mlflow.url)
    model = f"death-compose-{'whole' if whole_worker else 'child'}"

    where = (redis_url, pausable_mlflow.url, secrets, identity, tmp_path)
    settings = settings_from(compose_environment("worker", *where))
    assert settings.effective_broker_url.startswith("amqp://")

    def start(log: Path) -> ComposeWorker:
        return ComposeWorker("worker", log, *where)

    workers: list[LocalWorker] = []
    try:
        elapsed = _kill_mid_task(
            pausable_mlflow, settings, start, tmp_path, model, whole_worker, workers
        )
    finally:
        for worker in workers:
            worker.stop()
        delete_rabbitmq_queues(identity["task_queue"])
    print(
        f"\ncompose (RabbitMQ), {model}: finished {elapsed:.1f} s after the kill", file=sys.stderr
    )
    assert elapsed < BOUND_SECONDS
    _assert_once(RedisStore.from_settings(settings), MlflowClient(pausable_mlflow.url), model)


@PAUSABLE
def test_a_lost_run_task_is_queued_again_by_the_sweep_under_its_webhooks_model_name(
    pausable_mlflow, redis_url, secrets, identity, tmp_path
):
    import json

    import mlflow
    from click.testing import CliRunner
    from mlflow import MlflowClient

    from config.settings import settings_environment
    from regpilot.cli.main import main
    from regpilot.workflows.reconcile import STALE_DELIVERY_SECONDS

    mlflow.set_tracking_uri(pausable_mlflow.url)
    settings = _zero_setup_settings(redis_url, pausable_mlflow.url, secrets, identity, tmp_path)
    model = "death-lost-run"
    # No `regpilot_model_name` tag, no name_mapping: only the webhook's model_name names it.
    run_id = train_run(PASSING, experiment="death-lost-run-experiment")
    delivery = _send(settings, run_id, model)
    store = RedisStore.from_settings(settings)
    # The task is lost (a broker that lost its data): the claim and the history stay.
    queue_key = f"{settings.key_prefix}celery:{settings.task_queue}"
    assert store.client.delete(queue_key) == 1
    env = settings_environment(settings)

    def dry_run() -> str:
        result = CliRunner().invoke(main, ["reconcile", "--since", "1h", "--dry-run"], env=env)
        assert result.exit_code == 0, result.output
        return str(result.output)

    assert run_id not in dry_run()  # just accepted: its task may still be on its way
    # Let the delivery age past the threshold (rewrite its accepted time, not the threshold).
    key = store.key("event", "runs", delivery)
    record = json.loads(store.client.get(key))
    record["received_at"] -= STALE_DELIVERY_SECONDS + 1
    store.client.set(key, json.dumps(record))
    assert f"unjudged run {run_id} -> {model}" in dry_run()

    worker = DefaultWorker(settings, tmp_path / "sweep.log")
    try:
        swept = CliRunner().invoke(main, ["reconcile", "--since", "1h"], env=env)
        assert swept.exit_code == 0 and "queued 1" in swept.output, swept.output
        client = MlflowClient(pausable_mlflow.url)
        wait_until(
            lambda: client.search_model_versions(f"name = '{model}'"),
            timeout=90,
            message="the lost run registered by the sweep",
        )
    finally:
        worker.stop()
    (version,) = client.search_model_versions(f"name = '{model}'")
    assert version.run_id == run_id


@PAUSABLE
def test_with_rabbitmq_unreachable_the_receiver_answers_503_and_releases_the_claim(
    pausable_mlflow, redis_url, secrets, identity, tmp_path
):
    from regpilot.cli.stack import free_port
    from tests.worker_processes import RABBITMQ_URL

    if not rabbitmq_answers():
        pytest.fail("no RabbitMQ on 127.0.0.1:5672 (.ci/run starts it)")
    where = (redis_url, pausable_mlflow.url, secrets, identity, tmp_path)
    production = settings_from(compose_environment("web", *where))
    closed = production.model_copy(
        update={"broker_url": f"amqp://guest:guest@127.0.0.1:{free_port()}//"}
    )
    store = RedisStore.from_settings(production)
    body, headers = run_webhook(secrets.run_webhook_secret, "run-broker-down", "m")
    refused = create_app(closed, configure_logging=False).test_client()
    response = refused.post("/webhooks/runs", data=body, headers=headers)
    assert response.status_code == 503 and response.json["reason"]
    delivery = headers["webhook-id"]
    # No claim is left without its task: nothing claimed, nothing in the history.
    assert not store.client.exists(store.key("delivery", "runs", delivery))
    assert all(e.get("delivery_id") != delivery for e in store.events(100))

    # The sender's retry, once the broker answers, is accepted and queued (not a duplicate).
    assert production.effective_broker_url == RABBITMQ_URL
    try:
        accepted = create_app(production, configure_logging=False).test_client()
        retried = accepted.post("/webhooks/runs", data=body, headers=headers)
        assert retried.status_code == 202 and retried.json["status"] == "queued"
        from kombu import Connection

        with Connection(RABBITMQ_URL) as connection:
            declared = connection.default_channel.queue_declare(production.task_queue, passive=True)
        assert declared.message_count == 1
    finally:
        delete_rabbitmq_queues(production.task_queue)


@dataclass
class LeaseRig:
    """A worker configuration running the lease test tasks (tests/lease_tasks.py) on its queue."""

    configuration: str
    settings: Settings
    env: dict[str, str]
    queue: str
    client: redis_lib.Redis
    key: str
    producer: Any

    @property
    def timeout(self) -> int:
        return self.settings.broker_visibility_timeout  # the shipped default (Redis's; 60 s)

    def start(self, log: Path) -> LocalWorker:
        argv = [sys.executable, "-m", "celery", "-A", "tasks.celery_app", "worker"]
        argv += ["-I", "tests.lease_tasks", "-Q", self.queue, "-c", "2", "-l", "INFO"]
        argv += ["--without-gossip", "--without-mingle", "-n", f"lease-{uuid.uuid4().hex[:6]}@%h"]
        return LocalWorker(argv, self.env, log)

    def counted(self, name: str) -> int:
        return int(self.client.get(self.key + name) or 0)

    def hold(self, name: str) -> None:
        """Queue a task that runs until `release-<name>` is pushed (10 minutes at most)."""
        from tests.lease_tasks import HOLD

        args = [self.key + name, self.key + f"release-{name}", 600]
        self.producer.send_task(HOLD, args=args, queue=self.queue)

    def release(self, name: str) -> None:
        self.client.lpush(self.key + f"release-{name}", "go")
        wait_until(lambda: self.counted(f"{name}:done") == 1, timeout=30, message=f"{name} done")


# The zero-setup kill waits out the 60 s visibility timeout; RabbitMQ requeues at once.
ZERO_SETUP = pytest.param("zero-setup", marks=pytest.mark.slow(80))


@pytest.fixture(params=[ZERO_SETUP, "compose-evaluator"])
def lease_rig(request, redis_url, secrets, identity, tmp_path) -> Iterator[LeaseRig]:
    """Evaluation-length work in one configuration, every timeout at its shipped default.

    The worker is `celery worker` with the test's tasks included, in the environment of the
    configuration: `Settings()` on Redis, or compose's evaluator (RabbitMQ broker).
    """
    from config.settings import settings_environment
    from regpilot.queue.celery_config import create_celery

    configuration = request.param
    if configuration == "zero-setup":
        settings = Settings(redis_url=redis_url, **identity)
        env = settings_environment(settings)
        queue = settings.task_queue
    else:
        if not rabbitmq_answers():
            pytest.fail("no RabbitMQ on 127.0.0.1:5672 (.ci/run starts it)")
        nowhere = "http://127.0.0.1:9"  # these tasks never call MLflow
        env = compose_environment("evaluator", redis_url, nowhere, secrets, identity, tmp_path)
        settings = settings_from(env)
        queue = settings.effective_evaluation_queue
    client = redis_lib.Redis.from_url(redis_url)
    yield LeaseRig(
        configuration,
        settings,
        env,
        queue,
        client,
        settings.key_prefix + "test:",
        create_celery(settings),
    )
    if configuration != "zero-setup":
        delete_rabbitmq_queues(queue)


# The two lease tests are separate (not one after the other) so that a parallel run overlaps
# their waits: each waits out the shipped visibility timeout on purpose.
@pytest.mark.slow(140)
def test_a_task_running_past_the_visibility_timeout_and_a_held_retry_each_run_once(
    lease_rig: LeaseRig, tmp_path: Path
) -> None:
    """On Redis a live worker renews the lease of what it holds, so a task running for twice the
    timeout and a retry waiting past it for its ETA each run once; RabbitMQ has no such timeout.
    """
    from tests.lease_tasks import COUNT

    rig = lease_rig
    worker = rig.start(tmp_path / "worker.log")
    try:
        rig.hold("long")
        rig.producer.send_task(
            COUNT, args=[rig.key + "eta"], countdown=rig.timeout + 40, queue=rig.queue
        )
        wait_until(lambda: rig.counted("long") == 1, timeout=60, message="the long task started")
        time.sleep(2 * rig.timeout + 10)  # two visibility timeouts and more: no redelivery
        assert rig.counted("long") == 1, "a running task was handed out again"
        assert rig.counted("eta") == 1, "the held retry did not run once at its ETA"
        rig.release("long")
    finally:
        worker.stop()
    assert rig.counted("long") == 1 and rig.counted("eta") == 1


def test_a_dead_workers_long_task_comes_back_within_the_bound(
    lease_rig: LeaseRig, tmp_path: Path
) -> None:
    """When the whole worker dies, its task comes back within the bound (then runs again in
    full: an evaluation's bound is this plus REGPILOT_EVALUATION_TIME_LIMIT)."""
    rig = lease_rig
    first = rig.start(tmp_path / "first.log")
    second: LocalWorker | None = None
    try:
        rig.hold("killed")
        wait_until(lambda: rig.counted("killed") == 1, timeout=60, message="the task started")
        first.kill_everything()
        killed_at = time.monotonic()
        second = rig.start(tmp_path / "second.log")
        wait_until(
            lambda: rig.counted("killed") == 2,
            timeout=BOUND_SECONDS,
            interval=0.5,
            message="the dead worker's task handed out again",
        )
        elapsed = time.monotonic() - killed_at
        rig.release("killed")
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
    print(
        f"\n{rig.configuration}: held task handed out again {elapsed:.1f} s later", file=sys.stderr
    )
    assert elapsed < BOUND_SECONDS
    assert rig.counted("killed:done") == 1
