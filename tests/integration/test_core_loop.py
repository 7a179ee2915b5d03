"""The headline path on the real services: MLflow server, Redis, receiver, Celery worker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import FAILING, PASSING, post, run_webhook, train_run, wait_until

pytestmark = pytest.mark.integration


def _notify(
    stack: dict[str, Any], run_id: str, model: str | None, message_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    secret = stack["settings"].run_webhook_secrets[0]
    body, headers = run_webhook(secret, run_id, model, message_id=message_id)
    return post(f"{stack['receiver'].url}/webhooks/runs", body, headers)


def _verdict(client: Any, run_id: str) -> str | None:
    return client.get_run(run_id).data.tags.get("validation_status")


def _versions(client: Any, name: str) -> list[Any]:
    return sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))


def test_passing_run_registers_one_version_with_seed_tags_and_challenger(stack, client):
    run_id = train_run(PASSING)
    status, answer = _notify(stack, run_id, "core-pass")
    assert status == 202 and answer["status"] == "queued"

    wait_until(lambda: _verdict(client, run_id), message="run verdict")
    # The verdict is written before the alias moves: wait for the event to finish.
    wait_until(lambda: _all_processed(stack, "core-pass"), timeout=60, message="event processed")
    versions = _versions(client, "core-pass")
    assert len(versions) == 1
    version = client.get_model_version("core-pass", versions[0].version)
    tags = version.tags
    assert tags["validation_status"] == "PASSED"
    assert tags["source_run_id"] == run_id
    assert tags["framework"] == "sklearn"  # from the model's flavor, not the run name
    assert tags["registration_date"].startswith("20")
    metadata = json.loads(tags["metadata"])
    assert metadata["metrics"]["test_accuracy"] == pytest.approx(0.95)
    assert metadata["params"]["C"] == "1.0"
    assert metadata["features"] and metadata["training_date"]
    report = json.loads(tags["validation_report"])
    assert report["status"] == "PASSED" and len(report["checks"]) == 3
    assert len(tags["validation_report"]) <= 1000 and len(tags["metadata"]) <= 1000
    # The MLflow UI shows the verdict and why without opening JSON: a one-line summary and,
    # since the user gave none, a description.
    summary = "PASSED 3/3: test_accuracy 0.95 >= 0.85, test_precision 0.93 >= 0.8, "
    assert tags["validation_summary"] == summary + "test_recall 0.92 >= 0.8"
    assert client.get_run(run_id).data.tags["validation_summary"] == tags["validation_summary"]
    assert version.description.startswith(f"Registered by regpilot from run {run_id}: ")
    assert "challenger" in version.aliases
    assert version.run_id == run_id
    assert _verdict(client, run_id) == "PASSED"


def test_failing_run_registers_nothing_and_tags_the_run(stack, client):
    run_id = train_run(FAILING)
    status, _ = _notify(stack, run_id, "core-fail")
    assert status == 202
    assert wait_until(lambda: _verdict(client, run_id), message="run verdict") == "FAILED"
    report = json.loads(client.get_run(run_id).data.tags["validation_report"])
    failed = [c for c in report["checks"] if c[3] == "FAILED"]
    assert failed == [["test_accuracy", ">= 0.85", "0.6", "FAILED"]]
    assert _versions(client, "core-fail") == []


def test_missing_metric_fails_with_a_reason(stack, client):
    run_id = train_run({"test_accuracy": 0.99, "test_precision": 0.99})
    _notify(stack, run_id, "core-missing")
    assert wait_until(lambda: _verdict(client, run_id), message="verdict") == "FAILED"
    report = json.loads(client.get_run(run_id).data.tags["validation_report"])
    assert ["test_recall", ">= 0.8", "missing", "FAILED"] in report["checks"]
    assert "required metric is missing" in report["reasons"]


def test_model_name_falls_back_to_run_tag_then_mapping_then_logged_model(stack, client):
    tagged = train_run(PASSING, tags={"regpilot_model_name": "core-from-tag"})
    mapped = train_run(PASSING, experiment="mapped-experiment")
    logged = train_run(PASSING, model_name="core-from-logged-name")
    for run_id in (tagged, mapped, logged):
        assert _notify(stack, run_id, None)[0] == 202
    for run_id in (tagged, mapped, logged):
        wait_until(lambda r=run_id: _verdict(client, r), message="verdict")
    assert [v.run_id for v in _versions(client, "core-from-tag")] == [tagged]
    assert [v.run_id for v in _versions(client, "mapped-model")] == [mapped]
    assert [v.run_id for v in _versions(client, "core-from-logged-name")] == [logged]


def test_run_without_a_model_is_a_recorded_failure_not_a_crash(stack, store):
    run_id = train_run(PASSING, log_model=False)
    status, answer = _notify(stack, run_id, None)
    assert status == 202

    def outcome() -> dict[str, Any] | None:
        for event in store.events(200):
            if event["delivery_id"] == answer["delivery_id"] and event.get("outcome") != "queued":
                return event
        return None

    event = wait_until(outcome, message="recorded outcome")
    assert event["outcome"] == "failed"
    assert "logged no model" in event["detail"]


def test_the_same_delivery_five_times_registers_once(stack, client):
    run_id = train_run(PASSING)
    secret = stack["settings"].run_webhook_secrets[0]
    body, headers = run_webhook(secret, run_id, "core-dedupe")
    answers = [post(f"{stack['receiver'].url}/webhooks/runs", body, headers) for _ in range(5)]
    assert [a[0] for a in answers] == [202, 200, 200, 200, 200]
    assert [a[1]["status"] for a in answers[1:]] == ["duplicate"] * 4
    # Five *different* deliveries about the same run still make one version.
    for _ in range(5):
        assert _notify(stack, run_id, "core-dedupe")[0] == 202
    wait_until(lambda: _verdict(client, run_id), message="verdict")
    wait_until(lambda: _all_processed(stack, "core-dedupe"), timeout=60, message="queue drained")
    assert len(_versions(client, "core-dedupe")) == 1


def _all_processed(stack: dict[str, Any], model: str) -> bool:
    """Tell whether every event about `model` has its outcome.

    Only this test's model: an earlier test in this pytest process may have left an event that
    a worker of its own (since stopped) was to process.
    """
    from regpilot.stores.redis_store import RedisStore

    events = RedisStore.from_settings(stack["settings"]).events(500)
    return all(e.get("outcome") != "queued" for e in events if e.get("model") == model)


def test_hand_registered_version_is_validated_through_mlflows_own_webhook(stack, client):
    import mlflow

    good = train_run(PASSING)
    bad = train_run(FAILING)
    # Registered from models:/<id>: MLflow's payload then has run_id null.
    model_id = client.get_run(good).outputs.model_outputs[0].model_id
    good_version = mlflow.register_model(f"models:/{model_id}", "core-by-hand").version
    bad_version = mlflow.register_model(f"runs:/{bad}/model", "core-by-hand").version

    def tagged(version: str) -> Any:
        mv = client.get_model_version("core-by-hand", version)
        return mv if "validation_status" in mv.tags else None

    passed = wait_until(lambda: tagged(good_version), message="webhook-driven validation")
    failed = wait_until(lambda: tagged(bad_version), message="webhook-driven validation")
    # The verdict tags come before the alias move: wait for the move, then read again.
    wait_until(
        lambda: client.get_registered_model("core-by-hand").aliases.get("challenger"),
        message="challenger",
    )
    passed = client.get_model_version("core-by-hand", good_version)
    assert passed.tags["validation_status"] == "PASSED"
    assert passed.tags["source_run_id"] == good
    assert "challenger" in passed.aliases
    assert failed.tags["validation_status"] == "FAILED"
    assert failed.tags["validation_summary"] == "FAILED: test_accuracy 0.6, needs >= 0.85"
    assert failed.aliases == []
    assert client.get_registered_model("core-by-hand").aliases == {"challenger": good_version}


def test_retention_keeps_newest_three_and_never_touches_an_aliased_version(stack, client):
    name = "retention-model"  # keep: 3, action: archive in tests/fixtures/policy.yaml
    first = train_run(PASSING)
    _notify(stack, first, name)
    wait_until(lambda: _verdict(client, first), message="first verdict")
    client.set_registered_model_alias(name, "champion", "1")
    runs = [train_run(PASSING) for _ in range(5)]
    for run_id in runs:
        _notify(stack, run_id, name)
    for run_id in runs:
        wait_until(lambda r=run_id: _verdict(client, r), message="verdicts")
    wait_until(lambda: _all_processed(stack, name), timeout=60, message="queue drained")

    versions = {
        int(v.version): client.get_model_version(name, v.version) for v in _versions(client, name)
    }
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]
    archived = sorted(n for n, v in versions.items() if v.current_stage == "Archived")
    assert archived == [2, 3]
    assert all(versions[n].tags.get("retention_status") == "archived" for n in archived)
    assert versions[1].current_stage != "Archived" and "champion" in versions[1].aliases
    assert "challenger" in versions[6].aliases


def test_retention_delete_action_deletes_old_unprotected_versions(stack, client):
    name = "retention-delete-model"  # keep: 2, action: delete
    runs = [train_run(PASSING) for _ in range(4)]
    for run_id in runs:
        _notify(stack, run_id, name)
        wait_until(lambda r=run_id: _verdict(client, r), message="verdict")
    wait_until(lambda: _all_processed(stack, name), timeout=60, message="queue drained")
    assert [int(v.version) for v in _versions(client, name)] == [3, 4]
