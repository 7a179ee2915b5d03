"""Model names, tag fitting, and the pure signature functions."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from regpilot.core.naming import InvalidModelName, resolve_name
from regpilot.core.signatures import (
    SignatureError,
    sign_databricks,
    sign_mlflow,
    sign_standard,
    verify_databricks,
    verify_mlflow,
    verify_standard,
)
from regpilot.core.tags import fit_json, is_safe_tag_key


@pytest.mark.parametrize(
    ("name", "expected"),
    [("fraud", "main.ml_models.fraud"), ("cat.sch.fraud", "cat.sch.fraud")],
)
def test_unity_catalog_names(name, expected):
    assert resolve_name(name, unity_catalog=True, catalog="main", schema="ml_models") == expected


@pytest.mark.parametrize("name", ["a.b", "a.b.c.d", "cat.sch.fr aud", "", "  ", "x.y.ü"])
def test_invalid_unity_catalog_names_are_rejected(name):
    with pytest.raises(InvalidModelName):
        resolve_name(name, unity_catalog=True, catalog="main", schema="ml_models")


def test_oss_names_pass_through_but_not_slashes():
    assert resolve_name("my model", unity_catalog=False, catalog="c", schema="s") == "my model"
    with pytest.raises(InvalidModelName):
        resolve_name("a/b", unity_catalog=False, catalog="c", schema="s")


def test_tag_keys_we_write_are_uc_safe():
    from regpilot.core import tags

    for key in (
        "VALIDATION_STATUS",
        "VALIDATION_REPORT",
        "SOURCE_RUN_ID",
        "REGISTRATION_DATE",
        "FRAMEWORK",
        "METADATA",
        "RETENTION_STATUS",
        "PREVIOUS_CHAMPION",
    ):
        assert is_safe_tag_key(getattr(tags, key))
    assert not is_safe_tag_key("a.b") and not is_safe_tag_key("a-b")


@given(
    st.dictionaries(
        st.text(max_size=30),
        st.one_of(
            st.text(max_size=300),
            st.lists(st.text(max_size=50), max_size=40),
            st.dictionaries(st.text(max_size=20), st.floats(allow_nan=False), max_size=40),
        ),
        max_size=20,
    )
)
def test_fit_json_is_always_valid_json_within_limit(value):
    text = fit_json(value, 1000)
    assert len(text) <= 1000
    json.loads(text)


def test_mlflow_signature_matches_the_spec_example():
    body = b'{"entity": "model_version"}'
    signature = sign_mlflow("s3cret", "id-1", 1795768052, body)
    headers = {
        "X-MLflow-Delivery-Id": "id-1",
        "X-MLflow-Timestamp": "1795768052",
        "X-MLflow-Signature": signature,
    }
    assert verify_mlflow(["old", "s3cret"], headers, body, now=1795768052) == "id-1"
    with pytest.raises(SignatureError, match="timestamp"):
        verify_mlflow(["s3cret"], headers, body, now=1795768052 + 301)
    with pytest.raises(SignatureError, match="does not match"):
        verify_mlflow(["other"], headers, body, now=1795768052)


def test_standard_webhooks_interoperate_both_ways():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"run_id": "abc"}'
    now = int(time.time())
    ours = sign_standard(secret, "msg_1", now, body.encode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": ours}
    Webhook(secret).verify(body, headers)  # theirs accepts ours
    from datetime import UTC, datetime

    theirs = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, tz=UTC), body)
    headers["webhook-signature"] = "v1,bogus " + theirs
    assert verify_standard([secret], headers, body.encode(), now=now) == "msg_1"


def test_databricks_hex_signature():
    body = b'{"event": "MODEL_VERSION_CREATED"}'
    verify_databricks(["k"], {"X-Databricks-Signature": sign_databricks("k", body)}, body)
    with pytest.raises(SignatureError):
        verify_databricks(
            ["k"], {"X-Databricks-Signature": sign_databricks("k", body + b" ")}, body
        )
