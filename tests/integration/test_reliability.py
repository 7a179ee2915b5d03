"""Nothing lost, nothing done twice: outages, dead letters, killed workers, races, sweeps.

These tests run their own MLflow server (one they can stop, restart and pause) with no webhook
installed, their own Redis key prefixes and their own Celery worker processes.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from click.testing import CliRunner

from config.settings import Settings, settings_environment
from handlers import create_app
from regpilot.cli.main import main
from regpilot.cli.stack import LocalStack, Secrets, free_port, throwaway_redis_argv
from regpilot.stores.redis_store import RedisStore
from tests.conftest import FIXTURES, WorkerProcess
from tests.support import FAILING, PASSING, derive, run_webhook, train_run, wait_until

pytestmark = pytest.mark.integration


class RestartableMlflow:
    """An MLflow server on a fixed port that a test can stop, start, pause and resume."""

    def __init__(self, state: Path, secrets: Secrets) -> None:
        self.stack = LocalStack(state)
        self.secrets = secrets
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self.stack.start_mlflow(self.secrets, port=self.port)

    def stop(self) -> None:
        self.stack.stop_part("mlflow")

    def pause(self) -> None:
        self.stack.signal_part("mlflow", signal.SIGSTOP)

    def resume(self) -> None:
        self.stack.signal_part("mlflow", signal.SIGCONT)


# The tests using it share one xdist group: one worker process starts this server once.
@pytest.fixture(scope="module")
def own_mlflow(tmp_path_factory, secrets) -> Iterator[RestartableMlflow]:
    import mlflow

    server = RestartableMlflow(tmp_path_factory.mktemp("rel-mlflow"), secrets)
    previous = mlflow.get_tracking_uri()
    yield server
    server.resume()
    server.stack.stop()
    mlflow.set_tracking_uri(previous)


@pytest.fixture()
def use_own_mlflow(own_mlflow) -> Iterator[str]:
    """Point this process's MLflow client (training in the test) at the restartable server."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(own_mlflow.url)
    yield own_mlflow.url
    mlflow.set_tracking_uri(previous)


def _settings(base: Settings, mlflow_url: str, **overrides: Any) -> Settings:
    prefix = f"regpilot-test-rel-{uuid.uuid4().hex[:8]}:"
    return derive(
        base,
        mlflow_tracking_uri=mlflow_url,
        key_prefix=prefix,
        task_queue=prefix.rstrip(":"),
        policy_file=FIXTURES / "policy.yaml",
        **overrides,
    )


@pytest.fixture()
def cleanup_prefixes(redis_url) -> Iterator[list[str]]:
    prefixes: list[str] = []
    yield prefixes
    client = redis_lib.Redis.from_url(redis_url)
    for prefix in prefixes:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def _send(settings: Settings, run_ids: list[str], model: str) -> list[str]:
    http = create_app(settings, configure_logging=False).test_client()
    ids = []
    for run_id in run_ids:
        body, headers = run_webhook(settings.run_webhook_secrets[0], run_id, model)
        response = http.post("/webhooks/runs", data=body, headers=headers)
        assert response.status_code == 202, response.json
        ids.append(response.json["delivery_id"])
    return ids


def _outcomes(store: RedisStore, delivery_ids: list[str]) -> dict[str, str]:
    wanted = set(delivery_ids)
    return {
        e["delivery_id"]: e.get("outcome", "")
        for e in store.events(5000)
        if e.get("delivery_id") in wanted
    }


def _registrations(store: RedisStore, model: str) -> list[dict[str, Any]]:
    return [d for d in store.decisions(model, 1000) if d["kind"] == "registration"]


@pytest.mark.slow
@pytest.mark.xdist_group("own-mlflow")
def test_mlflow_outage_retries_then_dead_letters_then_retry_all(
    base_settings_for_rel, own_mlflow, use_own_mlflow, tmp_path, cleanup_prefixes, client_for
):
    runs = [train_run(PASSING, experiment="rel-outage") for _ in range(20)]

    # Part 1: down for longer than one retry, back within the retry budget.
    patient = _settings(
        base_settings_for_rel, own_mlflow.url, task_max_retries=25, task_retry_backoff_max=3
    )
    cleanup_prefixes.append(patient.key_prefix)
    store = RedisStore.from_settings(patient)
    worker = WorkerProcess(patient, tmp_path / "patient.log")
    try:
        own_mlflow.stop()
        ids = _send(patient, runs, "rel-outage")
        wait_until(
            lambda: (tmp_path / "patient.log").read_text().count("Retry in") >= 5,
            timeout=60,
            message="tasks retrying while MLflow is down",
        )
        own_mlflow.start()
        wait_until(
            lambda: set(_outcomes(store, ids).values()) == {"processed"},
            timeout=240,
            interval=1,
            message="all 20 processed after the outage",
        )
    finally:
        worker.stop()
    client = client_for(own_mlflow.url)
    versions = client.search_model_versions("name = 'rel-outage'")
    assert sorted(v.run_id for v in versions) == sorted(runs)  # none lost, none twice
    assert len(_registrations(store, "rel-outage")) == 20
    assert store.dead_letters() == []

    # Part 2: down past the retry budget: dead letters; one `retry all` once it is back.
    hasty = _settings(
        base_settings_for_rel, own_mlflow.url, task_max_retries=1, task_retry_backoff_max=1
    )
    cleanup_prefixes.append(hasty.key_prefix)
    store = RedisStore.from_settings(hasty)
    worker = WorkerProcess(hasty, tmp_path / "hasty.log")
    try:
        own_mlflow.stop()
        ids = _send(hasty, runs, "rel-dead")
        wait_until(
            lambda: len(store.dead_letters()) == 20,
            timeout=180,
            interval=1,
            message="20 dead letters",
        )
        assert set(_outcomes(store, ids).values()) == {"dead"}
        letter = store.dead_letters()[0]
        assert letter["attempts"] == 2 and "Transient" in letter["error"]
        assert letter["kwargs"]["delivery_id"] in ids
        own_mlflow.start()
        result = CliRunner().invoke(
            main, ["ops", "dead-letters", "retry", "--all"], env=settings_environment(hasty)
        )
        assert result.exit_code == 0, result.output
        assert "requeued 20" in result.output
        wait_until(
            lambda: store.dead_letters() == [],
            timeout=180,
            interval=1,
            message="dead letters drained by successful retries",
        )
    finally:
        worker.stop()
    versions = client.search_model_versions("name = 'rel-dead'")
    assert sorted(v.run_id for v in versions) == sorted(runs)
    assert set(_outcomes(store, ids).values()) == {"processed"}


# A worker killed mid-task, with the shipped defaults: tests/integration/test_worker_death.py.


@pytest.mark.xdist_group("own-mlflow")
def test_reconciliation_finds_a_version_no_webhook_announced(
    base_settings_for_rel, own_mlflow, use_own_mlflow, tmp_path, cleanup_prefixes, client_for
):
    import mlflow

    # This MLflow server has no webhook: registering by hand delivers nothing.
    good = train_run(PASSING, experiment="rel-reconcile")
    tagged = train_run(
        PASSING, experiment="rel-reconcile", tags={"regpilot_model_name": "rel-reconciled-run"}
    )
    version = mlflow.register_model(f"runs:/{good}/model", "rel-reconciled").version
    settings = _settings(base_settings_for_rel, own_mlflow.url)
    cleanup_prefixes.append(settings.key_prefix)
    env = settings_environment(settings)

    dry = CliRunner().invoke(main, ["reconcile", "--since", "1h", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "unjudged version rel-reconciled v1" in dry.output
    assert f"unjudged run {tagged} -> rel-reconciled-run" in dry.output
    client = client_for(own_mlflow.url)
    assert "validation_status" not in client.get_model_version("rel-reconciled", version).tags

    worker = WorkerProcess(settings, tmp_path / "reconcile.log")
    try:
        first = CliRunner().invoke(main, ["reconcile", "--since", "1h"], env=env)
        assert first.exit_code == 0, first.output
        again = CliRunner().invoke(main, ["reconcile", "--since", "1h"], env=env)
        assert "queued 0" in again.output  # found again, queued once
        wait_until(
            lambda: client.get_model_version("rel-reconciled", version).tags.get(
                "validation_status"
            ),
            timeout=60,
            message="reconciled version",
        )
        wait_until(
            lambda: client.search_model_versions("name = 'rel-reconciled-run'"),
            timeout=60,
            message="reconciled run registered",
        )
        # The verdict tags come before the alias move: wait for the move too.
        wait_until(
            lambda: client.get_registered_model("rel-reconciled").aliases.get("challenger"),
            timeout=60,
            message="reconciled version's challenger",
        )
    finally:
        worker.stop()
    mv = client.get_model_version("rel-reconciled", version)
    assert mv.tags["validation_status"] == "PASSED" and "challenger" in mv.aliases


@pytest.mark.slow(40)
def test_thirty_concurrent_runs_of_one_model(stack, client, tmp_path):
    settings = stack["settings"]
    extra = WorkerProcess(settings, tmp_path / "extra.log")  # 2 worker processes in all
    try:
        runs = [train_run(FAILING if i % 5 == 4 else PASSING) for i in range(30)]
        passing = {r for i, r in enumerate(runs) if i % 5 != 4}
        url = f"{stack['receiver'].url}/webhooks/runs"

        def send(run_id: str) -> int:
            from tests.support import post

            body, headers = run_webhook(
                settings.run_webhook_secrets[0], run_id, "concurrency-model"
            )
            return post(url, body, headers)[0]

        with ThreadPoolExecutor(max_workers=30) as pool:
            assert set(pool.map(send, runs)) == {202}
        wait_until(
            lambda: all(client.get_run(r).data.tags.get("validation_status") for r in runs),
            timeout=240,
            interval=1,
            message="30 verdicts",
        )
        # Verdicts come before the alias moves and retention: wait for every event to finish.
        from regpilot.stores.redis_store import RedisStore

        wait_until(
            lambda: all(
                e.get("outcome") != "queued"
                for e in RedisStore.from_settings(settings).events(500)
                if e.get("model") == "concurrency-model"  # earlier tests' events are not ours
            ),
            timeout=120,
            interval=1,
            message="30 events processed",
        )
    finally:
        extra.stop()
    versions = {
        int(v.version): client.get_model_version("concurrency-model", v.version)
        for v in client.search_model_versions("name = 'concurrency-model'")
    }
    assert sorted(mv.run_id for mv in versions.values()) == sorted(passing)
    newest = max(versions)
    assert client.get_registered_model("concurrency-model").aliases == {"challenger": str(newest)}
    live = sorted(n for n, mv in versions.items() if mv.current_stage != "Archived")
    assert live == sorted(versions)[-5:]  # keep: 5, nothing else protected


def test_redis_restart_gives_503s_then_normal_service(settings, tmp_path):
    port = free_port()
    argv = throwaway_redis_argv("redis-server", port)

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_until(lambda: _pings(port), timeout=10, message="redis up")
        return process

    server = start()
    own = derive(settings, redis_url=f"redis://127.0.0.1:{port}/0", task_queue="rel-redis-restart")
    http = create_app(own, configure_logging=False).test_client()
    secret = own.run_webhook_secrets[0]
    try:
        ok = http.post("/webhooks/runs", **_request(secret, "run-before"))
        assert ok.status_code == 202
        server.terminate()
        server.wait(timeout=10)
        during = _request(secret, "run-during")
        refused = http.post("/webhooks/runs", **during)
        assert refused.status_code == 503 and refused.json["reason"]
        server = start()
        # The sender retries the refused delivery: it is accepted, not a "duplicate".
        retried = wait_until(
            lambda: _accepted(http.post("/webhooks/runs", **during)),
            timeout=30,
            message="service back after the restart",
        )
        assert retried.json["status"] == "queued"
        after = http.post("/webhooks/runs", **_request(secret, "run-after"))
        assert after.status_code == 202
        queued = redis_lib.Redis(port=port).llen(f"{own.key_prefix}celery:rel-redis-restart")
        assert queued == 2  # the message from before the restart died with that Redis
    finally:
        server.terminate()
        server.wait(timeout=10)


def _accepted(response: Any) -> Any:
    return response if response.status_code == 202 else None


def _pings(port: int) -> bool:
    try:
        return bool(redis_lib.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis_lib.RedisError:
        return False


def _request(secret: str, run_id: str) -> dict[str, Any]:
    body, headers = run_webhook(secret, run_id, "m")
    return {"data": body, "headers": headers}


def test_secret_rotation_accepts_old_and_new(settings):
    new, old = settings.mlflow_webhook_secrets[0], "the-old-secret"
    rotated = derive(
        settings, mlflow_webhook_secret=f"{new},{old}", task_queue=settings.task_queue + "-rotation"
    )
    http = create_app(rotated, configure_logging=False).test_client()
    from tests.support import mlflow_webhook

    for secret, expected in ((new, 200), (old, 200), ("a-third-secret", 401)):
        body, headers = mlflow_webhook(
            secret, "model_version_tag.set", {"name": "m", "version": "1", "key": "k", "value": "v"}
        )
        assert http.post("/webhooks/mlflow", data=body, headers=headers).status_code == expected


# --- fixtures local to this module -----------------------------------------------------------


@pytest.fixture()
def base_settings_for_rel(settings: Settings) -> Settings:
    return settings


@pytest.fixture()
def client_for():
    from mlflow import MlflowClient

    return lambda url: MlflowClient(tracking_uri=url)
