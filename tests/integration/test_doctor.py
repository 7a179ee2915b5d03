"""`regpilot doctor` on the real stack: all green, then one thing broken at a time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from click.testing import CliRunner

from config.settings import settings_environment
from regpilot.cli.main import main
from regpilot.cli.webhooks import install_mlflow_webhook
from regpilot.queue import names
from regpilot.queue.celery_config import create_celery
from tests.support import wait_until

pytestmark = pytest.mark.integration


def _doctor(settings: Any, *args: str, **overrides: str) -> tuple[int, dict[str, Any], str]:
    env = {**settings_environment(settings), **overrides}
    result = CliRunner().invoke(main, ["doctor", "--json", *args], env=env)
    report = json.loads(result.output)
    return result.exit_code, {c["name"]: c for c in report["checks"]}, result.output


def _reconcile_once(settings: Any, store: Any) -> None:
    # What beat does every interval: queue the sweep (looking back a moment, so it finds
    # nothing to queue); the worker that runs it records the heartbeat.
    before = store.last_reconcile() or 0.0
    app = create_celery(settings)
    app.send_task(names.RECONCILE.name, args=[0.0001], queue=settings.task_queue)
    wait_until(lambda: (store.last_reconcile() or 0.0) > before, message="reconcile heartbeat")


def test_doctor_is_all_green_on_a_working_setup(stack, settings, store, receiver):
    _reconcile_once(settings, store)
    code, checks, output = _doctor(settings, "--url", f"{receiver.url}/webhooks/mlflow")
    assert code == 0, output
    assert {name: c["status"] for name, c in checks.items()} == {
        "redis": "ok",
        "broker": "skip",
        "policy": "ok",
        "notification variables": "skip",
        "workers": "ok",
        "beat": "ok",
        "mlflow": "ok",
        "mlflow webhook": "ok",
        "test delivery": "ok",
        "databricks": "skip",
    }
    assert stack["worker"].name in checks["workers"]["detail"]
    assert "MLflow 3." in checks["mlflow"]["detail"]


def test_a_wrong_webhook_secret_fails_the_test_delivery_with_its_fix(
    stack, settings, receiver, client
):
    name = f"doctor-wrong-{uuid.uuid4().hex[:6]}"
    hook_id, _ = install_mlflow_webhook(
        settings.mlflow_tracking_uri, f"{receiver.url}/webhooks/mlflow", "not-the-secret", name=name
    )
    try:
        code, checks, _ = _doctor(settings, "--webhook-name", name)
    finally:
        client.delete_webhook(hook_id)
    assert code == 1
    assert checks["mlflow webhook"]["status"] == "ok"
    test = checks["test delivery"]
    assert test["status"] == "fail" and "401" in test["detail"]
    assert "REGPILOT_MLFLOW_WEBHOOK_SECRET" in test["fix"]


def test_a_webhook_pointing_elsewhere_fails_with_the_install_command(stack, settings):
    code, checks, _ = _doctor(settings, "--url", "https://rp.example.com/webhooks/mlflow")
    assert code == 1
    check = checks["mlflow webhook"]
    assert check["status"] == "fail"
    assert "--url https://rp.example.com/webhooks/mlflow" in check["fix"]


def test_no_worker_on_our_queue_fails_the_workers_check(stack, settings):
    code, checks, _ = _doctor(settings, REGPILOT_TASK_QUEUE="nobody-consumes-this")
    assert code == 1
    workers = checks["workers"]
    assert workers["status"] == "fail"
    assert "none consumes 'nobody-consumes-this'" in workers["detail"]
    assert "REGPILOT_TASK_QUEUE" in workers["fix"]


@pytest.fixture()
def empty_prefixes(settings) -> Iterator[list[str]]:
    """Two key prefixes nothing runs under; what the doctor's Celery client wrote is deleted."""
    prefixes = [f"doctor-{uuid.uuid4().hex[:6]}:" for _ in range(2)]
    yield prefixes
    client = redis_lib.Redis.from_url(settings.redis_url)
    for prefix in prefixes:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def test_no_worker_at_all_and_no_beat_fail_with_their_fixes(stack, settings, empty_prefixes):
    code, checks, text = _doctor(settings, REGPILOT_KEY_PREFIX=empty_prefixes[0])
    assert code == 1
    assert checks["workers"]["status"] == "fail" and "regpilot worker" in checks["workers"]["fix"]
    assert checks["beat"]["status"] == "fail" and "regpilot beat" in checks["beat"]["fix"]
    human = CliRunner().invoke(
        main,
        ["doctor"],
        env={**settings_environment(settings), "REGPILOT_KEY_PREFIX": empty_prefixes[1]},
    )
    assert human.exit_code == 1
    assert "FAIL  workers" in human.output and "fix: start one" in human.output
    assert "Traceback" not in human.output + text


def test_an_invalid_policy_fails_the_policy_check(stack, settings, tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("defaults:\n  retention: {keep: 0}\n")
    code, checks, _ = _doctor(settings, REGPILOT_POLICY_FILE=str(bad))
    assert code == 1
    assert checks["policy"]["status"] == "fail"
    assert "retention.keep" in checks["policy"]["detail"]
