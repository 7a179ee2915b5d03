"""The receiver's edge behaviour, through Flask's test client against the real Redis."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from config.settings import Settings
from handlers import create_app
from handlers.app import ConfigurationError
from regpilot.cli.stack import free_port
from tests.support import derive, mlflow_webhook, run_webhook

SAMPLES = Path(__file__).parents[1] / "fixtures" / "mlflow_samples"
SAMPLE_SECRET = "wh-test-secret-123"


@pytest.fixture()
def rsettings(settings: Settings) -> Settings:
    # A queue no worker consumes: these tests check the receiver, not the processing.
    return derive(settings, **{"task_queue": settings.task_queue + "-receiver"})


@pytest.fixture()
def app(rsettings: Settings):
    return create_app(rsettings, configure_logging=False)


@pytest.fixture()
def http(app):
    return app.test_client()


def _queued_messages(settings: Settings) -> int:
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    return int(client.llen(f"{settings.key_prefix}celery:{settings.task_queue}"))


def test_valid_run_webhook_is_queued_with_202(http, rsettings):
    before = _queued_messages(rsettings)
    body, headers = run_webhook(rsettings.run_webhook_secrets[0], "abc123", "m")
    response = http.post("/webhooks/runs", data=body, headers=headers)
    assert response.status_code == 202
    assert response.json["status"] == "queued"
    assert _queued_messages(rsettings) == before + 1


def test_standardwebhooks_package_signature_verifies(http, rsettings):
    secret = rsettings.run_webhook_secrets[0]
    body = json.dumps({"run_id": "deadbeef", "model_name": "m"})
    message_id = f"msg_{uuid.uuid4().hex}"
    now = int(time.time())
    signature = Webhook(secret).sign(message_id, _utc(now), body)
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(now),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }
    assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 202


def _utc(ts: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b, h: (b + b" ", h),
        lambda b, h: (b, {**h, "webhook-id": "msg_other"}),
        lambda b, h: (b, {**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}),
        lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-signature"}),
        lambda b, h: (b, {**h, "webhook-signature": "v1,AAAA"}),
    ],
    ids=["body", "id", "timestamp", "missing", "forged"],
)
def test_any_changed_byte_or_header_is_401(http, rsettings, mutate):
    body, headers = run_webhook(rsettings.run_webhook_secrets[0], "abc", "m")
    body, headers = mutate(body, headers)
    response = http.post("/webhooks/runs", data=body, headers=headers)
    assert response.status_code == 401
    assert response.json["status"] == "rejected" and response.json["reason"]


def test_wrong_secret_and_stale_timestamp_are_401(http, rsettings):
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUA=="
    body, headers = run_webhook(other, "abc", "m")
    assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 401
    stale = int(time.time()) - 301
    body, headers = run_webhook(rsettings.run_webhook_secrets[0], "abc", "m", timestamp=stale)
    response = http.post("/webhooks/runs", data=body, headers=headers)
    assert response.status_code == 401
    assert "timestamp" in response.json["reason"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"model_name": "m"}', "run_id"),
        (b'{"run_id": 42}', "run_id"),
        (b'{"run_id": "../../etc"}', "run_id"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_malformed_bodies_are_400_with_a_reason(http, rsettings, body, reason):
    headers = _signed_headers(rsettings.run_webhook_secrets[0], body)
    response = http.post("/webhooks/runs", data=body, headers=headers)
    assert response.status_code == 400
    assert reason in response.json["reason"]


def _signed_headers(secret: str, body: bytes) -> dict[str, str]:
    from regpilot.core.signatures import sign_standard

    message_id, now = f"msg_{uuid.uuid4().hex}", int(time.time())
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(now),
        "webhook-signature": sign_standard(secret, message_id, now, body),
    }


def test_wrong_content_type_is_415(http, rsettings):
    body = b'{"run_id": "abc"}'
    headers = {
        **_signed_headers(rsettings.run_webhook_secrets[0], body),
        "Content-Type": "text/plain",
    }
    assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 415


def test_oversized_body_is_413_before_parsing(http, rsettings):
    body = b'{"run_id": "' + b"a" * (rsettings.max_body_bytes + 10) + b'"}'
    response = http.post("/webhooks/runs", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json["reason"] == "request body too large"


def test_same_delivery_id_twice_is_a_duplicate_and_nothing_is_enqueued(http, rsettings):
    body, headers = run_webhook(rsettings.run_webhook_secrets[0], "abc", "m")
    assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 202
    before = _queued_messages(rsettings)
    response = http.post("/webhooks/runs", data=body, headers=headers)
    assert response.status_code == 200 and response.json["status"] == "duplicate"
    assert _queued_messages(rsettings) == before


def test_mlflow_events_we_do_not_act_on_are_ignored_with_2xx(http, rsettings):
    secret = rsettings.mlflow_webhook_secrets[0]
    for event, data in [
        ("model_version_tag.set", {"name": "m", "version": "1", "key": "k", "value": "v"}),
        ("model_version_alias.deleted", {"name": "m", "alias": "challenger"}),
        ("registered_model.created", {"name": "m", "tags": {}, "description": ""}),
        ("budget_policy.exceeded", {"anything": 1}),
    ]:
        body, headers = mlflow_webhook(secret, event, data)
        response = http.post("/webhooks/mlflow", data=body, headers=headers)
        assert response.status_code == 200, event
        assert response.json["status"] == "ignored"


def test_version_registered_by_regpilot_is_not_validated_twice(http, rsettings):
    body, headers = mlflow_webhook(
        rsettings.mlflow_webhook_secrets[0],
        "model_version.created",
        {
            "name": "m",
            "version": "3",
            "source": "models:/m-1",
            "run_id": "r",
            "tags": {"registered_by": "regpilot", "validation_status": "PASSED"},
            "description": None,
        },
    )
    response = http.post("/webhooks/mlflow", data=body, headers=headers)
    assert response.status_code == 200 and response.json["status"] == "ignored"


def test_model_version_created_with_bad_data_is_400(http, rsettings):
    body, headers = mlflow_webhook(
        rsettings.mlflow_webhook_secrets[0], "model_version.created", {"name": "m", "version": 3}
    )  # version must be a string
    response = http.post("/webhooks/mlflow", data=body, headers=headers)
    assert response.status_code == 400
    assert "version" in response.json["reason"]


def test_broker_down_is_503_so_the_sender_retries(rsettings):
    down = derive(rsettings, **{"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    http = create_app(down, configure_logging=False).test_client()
    body, headers = run_webhook(down.run_webhook_secrets[0], "abc", "m")
    response = http.post("/webhooks/runs", data=body, headers=headers)
    assert response.status_code == 503
    assert response.json["reason"] == "queue unavailable, retry later"


def test_no_secret_refuses_to_start_unless_insecure_is_asked_for(rsettings):
    bare = derive(rsettings, **{"mlflow_webhook_secret": None, "run_webhook_secret": None})
    with pytest.raises(ConfigurationError, match="no webhook secret"):
        create_app(bare, configure_logging=False)
    insecure = derive(bare, **{"insecure_no_signature": True})
    http = create_app(insecure, configure_logging=False).test_client()
    response = http.post("/webhooks/runs", json={"run_id": "abc"})
    assert response.status_code == 202


def test_invalid_policy_refuses_to_start_naming_file_and_line(rsettings, tmp_path):
    from config.policy import PolicyError

    bad = tmp_path / "policy.yaml"
    bad.write_text("defaults:\n  metrics:\n    acc: {min: 0.9}\n  retention:\n    keep: -1\n")
    with pytest.raises(PolicyError, match=r"policy.yaml:5: .*defaults.retention.keep"):
        create_app(derive(rsettings, **{"policy_file": bad}), configure_logging=False)


def test_unknown_path_and_method_answer_json(http):
    response = http.get("/webhooks/runs")
    assert response.status_code == 405 and response.json["status"] == "rejected"
    assert http.get("/nope").status_code == 404


def test_health(http):
    assert http.get("/healthz").json == {"status": "ok"}
    assert http.get("/readyz").status_code == 200


# --- MLflow's real deliveries -----------------------------------------------------------------


def _samples() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*.json"))


@pytest.mark.parametrize("sample", _samples(), ids=lambda p: p.stem)
def test_every_real_mlflow_sample_is_accepted_with_its_secret(sample, rsettings):
    capture = json.loads(sample.read_text())
    headers = dict(capture["headers"])
    body = capture["raw_body_exact_bytes_as_text"].encode()
    signed = "X-MLflow-Signature" in headers
    settings = derive(rsettings, **{"mlflow_webhook_secret": SAMPLE_SECRET})
    clock = lambda: int(headers["X-MLflow-Timestamp"]) + 5  # noqa: E731 - the capture day
    http = create_app(settings, clock=clock, configure_logging=False).test_client()
    response = http.post("/webhooks/mlflow", data=body, headers=headers)
    if not signed:
        assert response.status_code == 401  # a webhook without a secret is never accepted
        return
    assert response.status_code in (200, 202), response.json
    # Any changed byte of the body fails.
    tampered = body.replace(b'"data"', b'"Data"')
    headers["X-MLflow-Delivery-Id"] = headers["X-MLflow-Delivery-Id"]
    assert http.post("/webhooks/mlflow", data=tampered, headers=headers).status_code == 401
    # Another secret, or a changed signed header, fails too.
    other = create_app(
        derive(settings, mlflow_webhook_secret="wh-test-secret-124"),
        clock=clock,
        configure_logging=False,
    ).test_client()
    assert other.post("/webhooks/mlflow", data=body, headers=headers).status_code == 401
    moved = {**headers, "X-MLflow-Timestamp": str(int(headers["X-MLflow-Timestamp"]) + 1)}
    assert http.post("/webhooks/mlflow", data=body, headers=moved).status_code == 401
