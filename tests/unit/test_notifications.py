"""Notifications: which decisions notify, the event, its Slack/Teams/webhook forms, the policy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.policy import PolicyError, parse_policy
from config.settings import notify_variable
from regpilot.core import notifications as n
from regpilot.core.signatures import verify_standard
from regpilot.notifications.delivery import NotificationRefused, prepare

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "notifications.schema.json").read_text())
FAILED_CHECKS = [
    {
        "name": "test_accuracy",
        "expected": ">= 0.85",
        "actual": "0.6",
        "result": "FAILED",
        "reason": "below the floor",
    },
    {
        "name": "test_recall",
        "expected": ">= 0.8",
        "actual": "0.92",
        "result": "PASSED",
        "reason": "",
    },
]


def _event(kind: str = "gate", **details: object) -> dict:
    decision = {"kind": kind, "trigger": {"source": "runs", "delivery_id": "msg_1"}, **details}
    event_type = n.event_type_for(kind, decision, challenger_alias="challenger")
    assert event_type is not None
    return n.build_event(
        event_type, "evt_" + "a" * 32, "2026-12-04T10:00:00.000+00:00", "fraud", decision
    )


@pytest.mark.parametrize(
    ("kind", "details", "expected"),
    [
        ("gate", {"verdict": "PASSED"}, n.VALIDATION_PASSED),
        ("gate", {"verdict": "FAILED"}, n.VALIDATION_FAILED),
        ("gate", {"verdict": "SKIPPED"}, None),
        ("registration", {"version": 3}, n.REGISTERED),
        ("alias", {"alias": "challenger", "version": 3}, n.CHALLENGER_MOVED),
        ("alias", {"alias": "staging", "version": 3}, None),
        ("promotion", {"alias": "champion", "version": 3}, n.CHAMPION_PROMOTED),
        ("rollback", {"alias": "champion", "version": 2}, n.CHAMPION_ROLLED_BACK),
        ("retention", {"action": "archive", "version": 1}, n.RETENTION_APPLIED),
        ("dead_letter", {"task": "regpilot.run_completed"}, n.DEAD_LETTER),
        ("stage", {"stage": "Production"}, None),
        ("alias_deleted", {"alias": "challenger"}, None),
        ("transition_request", {"verdict": "PASSED"}, None),
    ],
)
def test_each_decision_kind_maps_to_its_event(kind, details, expected):
    assert n.event_type_for(kind, details, challenger_alias="challenger") == expected


def test_a_renamed_challenger_alias_still_notifies_challenger_moved():
    assert n.event_type_for("alias", {"alias": "candidate"}, challenger_alias="candidate") == (
        n.CHALLENGER_MOVED
    )


def test_the_event_names_model_version_run_verdict_and_only_the_failed_checks():
    event = _event(version="4", run_id="r1", verdict="FAILED", checks=FAILED_CHECKS)
    data = event["data"]
    assert event["type"] == n.VALIDATION_FAILED
    assert (data["model"], data["version"], data["run_id"], data["verdict"]) == (
        "fraud",
        4,
        "r1",
        "FAILED",
    )
    assert data["failed_checks"] == [
        {
            "name": "test_accuracy",
            "expected": ">= 0.85",
            "actual": "0.6",
            "reason": "below the floor",
        }
    ]
    assert data["trigger"] == {"source": "runs", "delivery_id": "msg_1"}


def test_links_follow_the_mlflow_ui_routes():
    links = n.mlflow_links("http://mlflow.example:5000/", "team/fraud model", 7, "r1", "12")
    assert links == {
        "model": "http://mlflow.example:5000/#/models/team%2Ffraud%20model",
        "version": "http://mlflow.example:5000/#/models/team%2Ffraud%20model/versions/7",
        "run": "http://mlflow.example:5000/#/experiments/12/runs/r1",
    }
    assert "run" not in n.mlflow_links("https://m", "x", None, "r1", None)
    assert n.mlflow_links("databricks", "x", 1, "r", "1") == {}


def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.mark.parametrize(
    ("kind", "details"),
    [
        ("gate", {"run_id": "r1", "verdict": "FAILED", "checks": FAILED_CHECKS}),
        ("gate", {"version": 2, "run_id": None, "verdict": "PASSED", "checks": []}),
        ("registration", {"version": 3, "run_id": "r1", "verdict": "PASSED"}),
        ("alias", {"alias": "challenger", "version": 3, "previous": None}),
        ("promotion", {"alias": "champion", "version": 3, "previous": 2}),
        ("rollback", {"alias": "champion", "version": 2, "previous": 3}),
        ("retention", {"action": "delete", "version": 1, "reason": "older than the newest 10"}),
        ("dead_letter", {"task": "regpilot.run_completed", "error": "boom", "run_id": "r9"}),
    ],
)
def test_every_event_kind_validates_against_the_documented_schema(kind, details):
    event = n.with_links(_event(kind, **details), {"model": "http://m/#/models/fraud"})
    errors = [e.message for e in _validator().iter_errors(event)]
    assert errors == []


def test_the_schema_rejects_an_event_it_does_not_document():
    event = _event(verdict="PASSED")
    event["data"]["surprise"] = 1
    assert list(_validator().iter_errors(event))


def test_slack_message_has_headline_failed_checks_and_links_escaped():
    event = n.with_links(
        _event(version=4, run_id="r1", verdict="FAILED", checks=FAILED_CHECKS),
        {
            "version": "http://m/#/models/fraud/versions/4",
            "run": "http://m/#/experiments/1/runs/r1",
        },
    )
    message = n.slack_message(event)
    assert message["text"] == "fraud v4: failed validation"
    section = message["blocks"][1]["text"]["text"]
    assert "Failed check test_accuracy: expected &gt;= 0.85, got 0.6 (below the floor)" in section
    assert "test_recall" not in section
    links = message["blocks"][2]["elements"][0]["text"]
    assert "<http://m/#/models/fraud/versions/4|Model version>" in links
    assert "<http://m/#/experiments/1/runs/r1|Run>" in links


def test_teams_message_is_an_adaptive_card_with_open_url_actions():
    event = n.with_links(
        _event("promotion", alias="champion", version=5, previous=4),
        {"version": "https://m/#/models/fraud/versions/5"},
    )
    message = n.teams_message(event)
    attachment = message["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    texts = [block["text"] for block in card["body"]]
    assert texts[0] == "fraud v5: promoted to champion"
    assert "Alias champion -> v5 (was v4)" in texts
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Model version",
            "url": "https://m/#/models/fraud/versions/5",
        }
    ]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/services/T/B/x", True),
        ("http://127.0.0.1:8080/hook", True),
        ("http://localhost/hook", True),
        ("http://[::1]:9/x", True),
        ("http://hooks.example.com/hook", False),
        ("http://10.0.0.5/hook", False),
        ("ftp://example.com/x", False),
        ("hooks.slack.com/services", False),
    ],
)
def test_destinations_must_be_https_except_loopback(url, allowed):
    assert (n.destination_url_problem(url) is None) is allowed


POLICY = """
defaults:
  notifications:
    ops:
      type: webhook
      url: https://ops.example.com/regpilot
      secret_env: REGPILOT_NOTIFY_SECRET_OPS
      events: [validation.failed, dead_letter]
    chat: {type: slack, url_env: REGPILOT_NOTIFY_SLACK_ML}
models:
  fraud:
    notifications:
      chat: null
      risk: {type: teams, url_env: REGPILOT_NOTIFY_TEAMS_RISK, events: [champion.promoted]}
"""


def test_destinations_inherit_by_name_and_null_drops_one():
    policy = parse_policy(POLICY)
    assert set(policy.for_model("other").notifications) == {"ops", "chat"}
    fraud = policy.for_model("fraud").notifications
    assert set(fraud) == {"ops", "risk"}
    assert fraud["ops"].events == ["validation.failed", "dead_letter"]
    assert policy.for_model("other").notifications["chat"].events == list(n.EVENT_TYPES)


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("{type: webhook, url: 'https://x.example'}", "needs 'secret_env'"),
        ("{type: slack, url: 'http://hooks.example.com/x'}", "must be https"),
        ("{type: slack}", "exactly one of 'url' or 'url_env'"),
        ("{type: slack, url_env: AWS_SECRET_ACCESS_KEY}", "should match pattern"),
        (
            "{type: slack, url_env: REGPILOT_NOTIFY_X, events: [promoted]}",
            "unknown event(s) promoted",
        ),
        (
            "{type: slack, url_env: REGPILOT_NOTIFY_X, secret_env: REGPILOT_NOTIFY_Y}",
            "applies to type webhook only",
        ),
        ("{type: email, url: 'https://x.example'}", "'slack', 'teams' or 'webhook'"),
    ],
)
def test_a_bad_destination_is_a_clear_policy_error(destination, message):
    text = f"defaults:\n  notifications:\n    ops: {destination}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.yaml")
    assert "policy.yaml:3" in str(caught.value)
    assert "notifications.ops" in str(caught.value)
    assert message in str(caught.value)


def test_only_regpilot_notify_variables_can_be_read(monkeypatch):
    monkeypatch.setenv("REGPILOT_NOTIFY_SECRET_T", "whsec_abc")
    assert notify_variable("REGPILOT_NOTIFY_SECRET_T") == SecretStr("whsec_abc")
    assert notify_variable("REGPILOT_NOTIFY_UNSET_T") is None
    with pytest.raises(ValueError, match="must start with REGPILOT_NOTIFY_"):
        notify_variable("HOME")


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_webhook_delivery_is_signed_the_standard_webhooks_way():
    destination = parse_policy(POLICY).for_model("x").notifications["ops"]
    event = _event(verdict="FAILED", checks=FAILED_CHECKS)
    now = time.time()
    outbound = prepare(destination, event, now=now, lookup=lambda _: SecretStr(SECRET))
    assert outbound.url == "https://ops.example.com/regpilot"
    assert outbound.headers["webhook-id"] == event["id"]
    assert verify_standard([SECRET], outbound.headers, outbound.body, now=now)
    assert json.loads(outbound.body) == event


def test_a_missing_secret_or_url_variable_refuses_with_its_name():
    policy = parse_policy(POLICY)
    with pytest.raises(NotificationRefused, match="REGPILOT_NOTIFY_SECRET_OPS is not set"):
        prepare(
            policy.for_model("x").notifications["ops"],
            _event(verdict="PASSED"),
            now=0,
            lookup=lambda _: None,
        )
    with pytest.raises(NotificationRefused, match="REGPILOT_NOTIFY_SLACK_ML is not set"):
        prepare(
            policy.for_model("x").notifications["chat"],
            _event(verdict="PASSED"),
            now=0,
            lookup=lambda _: None,
        )


def test_a_url_variable_pointing_at_plain_http_is_refused():
    chat = parse_policy(POLICY).for_model("x").notifications["chat"]
    with pytest.raises(NotificationRefused, match=r"REGPILOT_NOTIFY_SLACK_ML.*must be https"):
        prepare(
            chat,
            _event(verdict="PASSED"),
            now=0,
            lookup=lambda _: SecretStr("http://hooks.example.com/x"),
        )


def test_a_notification_that_cannot_be_queued_is_logged_and_never_raises(caplog):
    import logging

    from config.settings import Settings
    from regpilot.queue.celery_config import create_celery
    from regpilot.queue.notify import Notifier

    # A broker nobody listens on: the Redis client retries (about 7 s measured), then gives up.
    app = create_celery(Settings(redis_url="redis://127.0.0.1:1/0"))
    notifier = Notifier(app, "q", parse_policy(POLICY))
    decision = {"kind": "gate", "verdict": "FAILED", "checks": FAILED_CHECKS, "trigger": {}}
    with caplog.at_level(logging.WARNING, logger="regpilot.notifications"):
        notifier("fraud", decision)
    assert [r.getMessage() for r in caplog.records] == ["notify.enqueue_failed"]
    assert "Connection refused" in caplog.records[0].__dict__["error"]


def test_a_decision_nobody_subscribes_to_queues_nothing(caplog):
    import logging

    from config.settings import Settings
    from regpilot.queue.celery_config import create_celery
    from regpilot.queue.notify import Notifier

    app = create_celery(Settings(redis_url="redis://127.0.0.1:1/0"))
    notifier = Notifier(app, "q", parse_policy(POLICY))
    with caplog.at_level(logging.INFO, logger="regpilot.notifications"):
        # `fraud` has only `ops` (validation.failed, dead_letter) and `risk` (champion.promoted).
        notifier("fraud", {"kind": "registration", "version": 2, "trigger": {}})
        notifier("fraud", {"kind": "gate", "verdict": "SKIPPED", "trigger": {}})
    assert caplog.records == []  # no broker was even tried
