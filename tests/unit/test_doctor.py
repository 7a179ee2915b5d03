"""`regpilot doctor`'s judgements: each probe answer, its verdict and its fix."""

from __future__ import annotations

import pytest

from regpilot.core.doctor import (
    fail,
    healthy,
    judge_beat,
    judge_mlflow_webhook,
    judge_test_delivery,
    judge_workers,
    ok,
    skip,
    unreachable,
)

HOOK = {
    "id": "w1",
    "name": "regpilot",
    "status": "ACTIVE",
    "url": "https://rp.example.com/webhooks/mlflow",
    "events": ["model_version.created"],
}


def test_workers_need_one_that_consumes_our_queue():
    assert judge_workers(None, "regpilot").status == "fail"
    assert "regpilot worker" in judge_workers({}, "regpilot").fix
    other = judge_workers({"w@h": ["celery"]}, "regpilot")
    assert other.status == "fail" and "REGPILOT_TASK_QUEUE=regpilot" in other.fix
    assert "celery" in other.detail
    good = judge_workers({"w@h": ["regpilot"], "x@h": ["celery"]}, "regpilot")
    assert good.status == "ok" and "w@h" in good.detail and "x@h" not in good.detail


def test_unreachable_names_the_place_the_error_and_the_fix():
    bare = unreachable("redis", "redis://h:6379/0", "start Redis")
    assert bare == fail("redis", "redis://h:6379/0 does not answer", "start Redis")
    with_error = unreachable("broker", "amqp://h:5672", "start it", ConnectionRefusedError(111))
    assert with_error.status == "fail"
    assert with_error.detail == "amqp://h:5672 does not answer: 111"
    assert with_error.fix == "start it"


@pytest.mark.parametrize(
    ("last", "status"),
    [(None, "fail"), (1000.0 - 300, "ok"), (1000.0 - 660, "ok"), (1000.0 - 661, "fail")],
)
def test_beat_is_alive_while_reconciliation_ran_within_two_intervals_and_a_minute(last, status):
    check = judge_beat(last, 1000.0, 300.0)
    assert check.status == status
    if status == "fail":
        assert "regpilot beat" in check.fix


def test_the_webhook_must_exist_be_active_subscribe_and_point_at_the_receiver():
    assert judge_mlflow_webhook([HOOK], "regpilot", None).status == "ok"
    assert judge_mlflow_webhook([HOOK], "regpilot", HOOK["url"]).status == "ok"
    missing = judge_mlflow_webhook([HOOK], "other", None)
    assert missing.status == "fail" and "webhooks install" in missing.fix
    disabled = judge_mlflow_webhook([{**HOOK, "status": "DISABLED"}], "regpilot", None)
    assert disabled.status == "fail" and "DISABLED" in disabled.detail
    events = judge_mlflow_webhook([{**HOOK, "events": ["model_version_tag.set"]}], "regpilot", None)
    assert events.status == "fail" and "model_version.created" in events.detail
    moved = judge_mlflow_webhook([HOOK], "regpilot", "https://new.example.com/webhooks/mlflow")
    assert moved.status == "fail" and "--url https://new.example.com/webhooks/mlflow" in moved.fix
    wrong_path = judge_mlflow_webhook([{**HOOK, "url": "https://x/hook"}], "regpilot", None)
    assert wrong_path.status == "fail"


@pytest.mark.parametrize(
    ("status", "body", "error", "verdict", "fix"),
    [
        (200, '{"status":"ignored"}', "", "ok", ""),
        (
            401,
            '{"reason":"signature does not match"}',
            "",
            "fail",
            "REGPILOT_MLFLOW_WEBHOOK_SECRET",
        ),
        (
            None,
            "",
            "Invalid webhook URL scheme: 'http'. Allowed schemes are: https.",
            "fail",
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES",
        ),
        (
            None,
            "",
            "Webhook URL must not resolve to a non-public IP address.",
            "fail",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true",
        ),
        (400, "Bad Request: host not allowed", "", "fail", "allowed hosts"),
        (None, "", "Failed to test webhook: ConnectionError(...)", "fail", "reachable"),
        (500, "boom", "", "fail", "receiver's log"),
    ],
)
def test_a_test_delivery_names_its_likely_cause(status, body, error, verdict, fix):
    check = judge_test_delivery(status, body, error)
    assert check.status == verdict
    assert fix in check.fix


def test_a_webhook_listing_that_fails_points_at_the_encryption_key():
    check = judge_test_delivery(None, "", "INTERNAL_ERROR", listing_failed=True)
    assert check.status == "fail" and "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" in check.fix


def test_only_a_failed_check_makes_the_setup_unhealthy():
    assert healthy([ok("a", ""), skip("b", "")])
    assert not healthy([ok("a", ""), fail("b", "", "fix")])
