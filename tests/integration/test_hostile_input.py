"""Hostile input never gets a 5xx, a traceback or a secret back: fixed cases plus fuzzing."""

from __future__ import annotations

import json
import logging
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import Settings
from handlers import create_app
from regpilot.core.signatures import sign_mlflow, sign_standard
from tests.support import derive, mlflow_webhook, run_webhook

ENDPOINTS = ["/webhooks/runs", "/webhooks/mlflow"]


@pytest.fixture(scope="module")
def hostile_settings(settings: Settings) -> Settings:
    return derive(
        settings,
        task_queue=settings.task_queue + "-hostile",
        max_body_bytes=64 * 1024,
        ops_token="ops-" + uuid.uuid4().hex,
    )


@pytest.fixture(scope="module")
def http(hostile_settings):
    return create_app(hostile_settings, configure_logging=False).test_client()


def _signed(settings: Settings, endpoint: str, body: bytes) -> dict[str, str]:
    now = int(time.time())
    if endpoint == "/webhooks/runs":
        message_id = f"msg_{uuid.uuid4().hex}"
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(now),
            "webhook-signature": sign_standard(
                settings.run_webhook_secrets[0], message_id, now, body
            ),
        }
    delivery = str(uuid.uuid4())
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": str(now),
        "X-MLflow-Signature": sign_mlflow(settings.mlflow_webhook_secrets[0], delivery, now, body),
    }


def _assert_clean(response) -> None:
    assert response.status_code < 500, response.data[:300]
    assert response.is_json, response.data[:300]
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_deeply_nested_json_is_400(http, hostile_settings, endpoint):
    body = b'{"run_id": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    headers = {**_signed(hostile_settings, endpoint, body), "Content-Type": "application/json"}
    response = http.post(endpoint, data=body, headers=headers)
    assert response.status_code == 400
    assert "nested" in response.json["reason"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_moderately_nested_json_past_the_limit_is_400(http, hostile_settings, endpoint):
    body = json.dumps(
        {
            "entity": "x",
            "action": "y",
            "data": {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
        }
    ).encode()
    headers = {**_signed(hostile_settings, endpoint, body), "Content-Type": "application/json"}
    response = http.post(endpoint, data=body, headers=headers)
    assert response.status_code == 400


def test_huge_body_is_413_without_a_signature_check(http):
    response = http.post(
        "/webhooks/mlflow",
        data=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "data",
    [
        {"name": ["m"], "version": "1"},
        {"name": "m", "version": "1.5"},
        {"name": "m", "version": "-1"},
        {"name": "", "version": "1"},
        {"name": "m", "version": "1", "tags": {"k": 1}},
        {"name": "m" * 300, "version": "1"},
    ],
)
def test_wrong_types_in_registry_fields_are_400(http, hostile_settings, data):
    body, headers = mlflow_webhook(
        hostile_settings.mlflow_webhook_secrets[0], "model_version.created", data
    )
    response = http.post("/webhooks/mlflow", data=body, headers=headers)
    assert response.status_code == 400
    assert response.json["reason"].startswith("invalid model_version.created data")


def test_replayed_old_timestamp_is_401_even_with_a_valid_signature(http, hostile_settings):
    old = int(time.time()) - 3600
    body, headers = mlflow_webhook(
        hostile_settings.mlflow_webhook_secrets[0],
        "model_version.created",
        {"name": "m", "version": "1"},
        timestamp=old,
    )
    response = http.post("/webhooks/mlflow", data=body, headers=headers)
    assert response.status_code == 401 and "timestamp" in response.json["reason"]


def test_no_secret_reaches_a_log_line_or_a_response(http, hostile_settings, caplog):
    from regpilot.observability.logging import JsonFormatter, TextFormatter

    caplog.set_level(logging.DEBUG)
    secret_run = hostile_settings.run_webhook_secrets[0]
    secret_mlflow = hostile_settings.mlflow_webhook_secrets[0]
    body, headers = run_webhook(secret_run, "abc", "m")
    bad = {**headers, "webhook-signature": headers["webhook-signature"][:-4] + "AAA="}
    responses = [
        http.post("/webhooks/runs", data=body, headers=bad),
        http.post("/webhooks/runs", data=body, headers=headers),
        http.post("/webhooks/mlflow", data=b"{}", headers={"Content-Type": "application/json"}),
        http.get("/ops/events", headers={"Authorization": "Bearer wrong"}),
    ]
    lines = [f(r) for r in caplog.records for f in (JsonFormatter().format, TextFormatter().format)]
    text = "\n".join(lines) + "".join(r.get_data(as_text=True) for r in responses)
    for secret in (secret_run, secret_mlflow, hostile_settings.ops_token.get_secret_value()):
        assert secret not in text
    assert headers["webhook-signature"] not in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
known_shapes = st.one_of(
    st.fixed_dictionaries({"run_id": json_values}, optional={"model_name": json_values}),
    st.fixed_dictionaries(
        {
            "entity": st.sampled_from(
                ["model_version", "model_version_alias", "registered_model", "prompt", "x"]
            ),
            "action": st.sampled_from(["created", "deleted", "set", "updated", "y"]),
            "data": st.dictionaries(
                st.sampled_from(
                    ["name", "version", "run_id", "source", "tags", "alias", "description"]
                ),
                json_values,
            ),
        },
        optional={"timestamp": json_values},
    ),
    json_values,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    payload=known_shapes,
    content_type=st.sampled_from(["application/json", "text/plain", "application/x+json", ""]),
    sign=st.booleans(),
)
def test_fuzz_signed_and_unsigned_payloads_never_5xx(
    http, hostile_settings, endpoint, payload, content_type, sign
):
    body = json.dumps(payload).encode()
    headers = _signed(hostile_settings, endpoint, body) if sign else {}
    if content_type:
        headers["Content-Type"] = content_type
    _assert_clean(http.post(endpoint, data=body, headers=headers))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    endpoint=st.sampled_from([*ENDPOINTS, "/ops/events", "/ops/dead-letters/x/retry"]),
    body=st.binary(max_size=2000),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Content-Type",
                "X-MLflow-Delivery-Id",
                "X-MLflow-Timestamp",
                "X-MLflow-Signature",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
                "Authorization",
                "Content-Encoding",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
        max_size=6,
    ),
)
def test_fuzz_raw_bytes_and_headers_never_5xx(http, endpoint, body, headers):
    _assert_clean(http.post(endpoint, data=body, headers=headers))
