"""The ops API and CLI: event history, dead letters listed, shown, retried and dropped."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from config.settings import settings_environment
from handlers import create_app
from regpilot.cli.main import main
from regpilot.stores.redis_store import RedisStore
from tests.support import PASSING, derive, run_webhook, train_run, wait_until

pytestmark = pytest.mark.integration
TOKEN = "ops-" + uuid.uuid4().hex


@pytest.fixture()
def ops_settings(settings):
    return derive(settings, ops_token=TOKEN)


@pytest.fixture()
def http(ops_settings):
    return create_app(ops_settings, configure_logging=False).test_client()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_ops_api_is_off_without_a_token(settings):
    http = create_app(settings, configure_logging=False).test_client()
    response = http.get("/ops/events")
    assert response.status_code == 404
    assert "REGPILOT_OPS_TOKEN" in response.json["reason"]


def test_ops_api_needs_the_bearer_token(http):
    assert http.get("/ops/dead-letters").status_code == 401
    assert (
        http.get("/ops/dead-letters", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert http.get("/ops/dead-letters", headers=AUTH).status_code == 200


def test_event_history_records_each_outcome(http, ops_settings):
    secret = ops_settings.run_webhook_secrets[0]
    body, headers = run_webhook(secret, "deadbeef" + uuid.uuid4().hex[:8], "ops-history")
    assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 202
    assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 200
    events = http.get("/ops/events?limit=20", headers=AUTH).json["events"]
    mine = [e for e in events if e["delivery_id"] == headers["webhook-id"]]
    assert {e["outcome"] for e in mine} >= {"duplicate"}
    assert len(mine) == 2
    assert http.get("/ops/events?limit=0", headers=AUTH).status_code == 400
    result = CliRunner().invoke(
        main, ["ops", "events", "--limit", "20", "--json"], env=settings_environment(ops_settings)
    )
    assert result.exit_code == 0 and headers["webhook-id"] in result.output


def test_dead_letter_retry_over_http_goes_through_the_normal_path(stack, http, client):
    store = RedisStore.from_settings(stack["settings"])
    run_id = train_run(PASSING)
    letter_id = store.add_dead_letter(
        {
            "task": "regpilot.run_completed",
            "args": [run_id, "ops-retried"],
            "kwargs": {"source": "runs", "delivery_id": f"ops-{uuid.uuid4().hex}"},
            "error": "TransientRegistryError: MLflow was down",
            "attempts": 4,
        }
    )
    listed = http.get("/ops/dead-letters", headers=AUTH).json["dead_letters"]
    assert letter_id in [letter["id"] for letter in listed]
    shown = http.get(f"/ops/dead-letters/{letter_id}", headers=AUTH).json["dead_letter"]
    assert shown["attempts"] == 4 and shown["args"] == [run_id, "ops-retried"]
    response = http.post(f"/ops/dead-letters/{letter_id}/retry", headers=AUTH)
    assert response.status_code == 202
    wait_until(
        lambda: store.dead_letter(letter_id) is None,
        timeout=60,
        message="dead letter leaves the store once its retry succeeds",
    )
    assert [v.run_id for v in client.search_model_versions("name = 'ops-retried'")] == [run_id]


def test_drop_and_unknown_dead_letters(http, ops_settings):
    store = RedisStore.from_settings(ops_settings)
    letter_id = store.add_dead_letter(
        {
            "task": "regpilot.run_completed",
            "args": ["x", None],
            "kwargs": {},
            "error": "boom",
            "attempts": 1,
        }
    )
    assert http.delete(f"/ops/dead-letters/{letter_id}", headers=AUTH).status_code == 200
    assert http.delete(f"/ops/dead-letters/{letter_id}", headers=AUTH).status_code == 404
    assert http.post("/ops/dead-letters/nope/retry", headers=AUTH).status_code == 404
    env = settings_environment(ops_settings)
    shown = CliRunner().invoke(main, ["ops", "dead-letters", "show", "nope"], env=env)
    assert shown.exit_code == 1 and "no dead letter nope" in shown.output
    usage = CliRunner().invoke(main, ["ops", "dead-letters", "retry"], env=env)
    assert usage.exit_code == 2 and "--all" in usage.output
