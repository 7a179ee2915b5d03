"""Databricks decisions that need no service: payload parsing, routing, phases, comments."""

from __future__ import annotations

import pytest

from config.settings import Settings
from handlers.webhooks.databricks import body_identity, configuration_problems
from regpilot.core.databricks import (
    INFORMATIONAL_EVENTS,
    REGISTRY_EVENTS,
    JobRunPhase,
    JobRunView,
    RegistryAction,
    TaskRunView,
    auth_problem,
    job_run_lookup_ids,
    job_run_phase,
    parse_job_notification,
    parse_registry_event,
    registry_action,
    requested_stage,
    transition_comment,
)
from regpilot.core.events import PayloadError
from regpilot.core.gate import Check, Verdict

# --- job notifications ---------------------------------------------------------------------------


def test_job_ids_may_be_numbers_or_digit_strings():
    as_text = parse_job_notification(
        {"event_type": "jobs.on_success", "run": {"run_id": "42"}, "job": {"job_id": "7"}}
    )
    as_number = parse_job_notification(
        {"event_type": "jobs.on_success", "run": {"run_id": 42}, "job": {"job_id": 7}}
    )
    assert as_text.run.run_id == as_number.run.run_id == 42
    assert as_text.job is not None and as_text.job.job_id == 7


def test_task_level_notification_carries_the_parent_run():
    note = parse_job_notification(
        {
            "event_type": "jobs.on_success",
            "task": {"task_key": "train"},
            "run": {"run_id": "9", "parent_run_id": "8"},
            "job": {"job_id": "1", "name": "nightly"},
        }
    )
    assert (note.run.run_id, note.run.parent_run_id) == (9, 8)
    assert note.task is not None and note.task.task_key == "train"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"event_type": "jobs.on_success"}, "run"),
        ({"event_type": "jobs.on_success", "run": {"run_id": "12a"}}, "integer id"),
        ({"event_type": "jobs.on_success", "run": {"run_id": True}}, "integer id"),
        ({"event_type": "jobs.on_success", "run": {"run_id": -1}}, "non-negative"),
        ({"event_type": "jobs.on_success", "run": {"run_id": "9" * 20}}, "integer id"),
        ({"event_type": "JOBS ON SUCCESS", "run": {"run_id": 1}}, "event_type"),
        ({"run": {"run_id": 1}}, "event_type"),
    ],
)
def test_bad_job_notifications_say_why(body, fragment):
    with pytest.raises(PayloadError) as caught:
        parse_job_notification(body)
    assert fragment in caught.value.reason


@pytest.mark.parametrize(
    ("life", "result", "status", "termination", "phase"),
    [
        ("TERMINATED", "SUCCESS", None, None, JobRunPhase.SUCCEEDED),
        ("TERMINATED", "SUCCESS_WITH_FAILURES", None, None, JobRunPhase.SUCCEEDED),
        ("TERMINATED", "FAILED", None, None, JobRunPhase.FAILED),
        ("INTERNAL_ERROR", None, None, None, JobRunPhase.FAILED),
        ("SKIPPED", None, None, None, JobRunPhase.FAILED),
        ("RUNNING", None, None, None, JobRunPhase.RUNNING),
        ("TERMINATING", None, None, None, JobRunPhase.RUNNING),
        ("WAITING_FOR_RETRY", None, None, None, JobRunPhase.RUNNING),
        (None, None, "TERMINATED", "SUCCESS", JobRunPhase.SUCCEEDED),
        (None, None, "TERMINATED", "CLIENT_ERROR", JobRunPhase.FAILED),
        (None, None, "QUEUED", None, JobRunPhase.RUNNING),
        (None, None, None, None, JobRunPhase.RUNNING),
    ],
)
def test_job_run_phase(life, result, status, termination, phase):
    assert job_run_phase(life, result, status, termination) is phase


def test_lookup_ids_cover_the_run_its_parent_and_succeeded_tasks_only():
    view = JobRunView(
        run_id=100,
        job_id=1,
        phase=JobRunPhase.SUCCEEDED,
        result="SUCCESS_WITH_FAILURES",
        tasks=(
            TaskRunView(101, "a", JobRunPhase.SUCCEEDED),
            TaskRunView(102, "b", JobRunPhase.FAILED),
            TaskRunView(103, "c", JobRunPhase.SUCCEEDED),
        ),
    )
    assert job_run_lookup_ids(view) == (100, 101, 103)
    assert job_run_lookup_ids(view, parent_run_id=99) == (100, 99, 101, 103)


# --- registry events -------------------------------------------------------------------------


def _event(event: str, **fields):
    return {"event": event, "webhook_id": "w1", "event_timestamp": 1589859029343, **fields}


@pytest.mark.parametrize("event", sorted(REGISTRY_EVENTS))
def test_every_documented_registry_event_parses_and_is_routed(event):
    fields = {"model_name": "m"}
    if event not in {"REGISTERED_MODEL_CREATED", "COMMENT_CREATED"}:
        fields["version"] = "8"
    parsed = parse_registry_event(_event(event, **fields))
    action, reason = registry_action(parsed)
    if event == "MODEL_VERSION_CREATED":
        assert action is RegistryAction.VALIDATE_VERSION
    elif event in INFORMATIONAL_EVENTS:
        assert action is RegistryAction.IGNORE and "needs no action" in reason
    elif event == "TRANSITION_REQUEST_TO_ARCHIVED_CREATED":
        assert action is RegistryAction.IGNORE and "Archived" in reason
    else:
        assert action is RegistryAction.REVIEW_TRANSITION


def test_documented_example_payloads_parse():
    tag_set = parse_registry_event(
        _event(
            "MODEL_VERSION_TAG_SET",
            model_name="Airline_Delay_SparkML",
            version="8",
            tags=[{"key": "key1", "value": "value1"}, {"key": "key2", "value": "value2"}],
            text="example@example.com set version tag(s) ...",
        )
    )
    assert [t.key for t in tag_set.tags] == ["key1", "key2"]
    moved = parse_registry_event(
        _event(
            "MODEL_VERSION_TRANSITIONED_STAGE",
            model_name="Airline_Delay_SparkML",
            version="8",
            to_stage="Production",
            from_stage="None",
        )
    )
    assert moved.version_number == 8 and moved.to_stage == "Production"


def test_version_may_be_a_number_and_unknown_events_are_ignored():
    parsed = parse_registry_event(_event("MODEL_VERSION_CREATED", model_name="m", version=3))
    assert parsed.version == "3"
    future = parse_registry_event(_event("SOMETHING_NEW", model_name="m"))
    assert registry_action(future) == (RegistryAction.IGNORE, "unknown event SOMETHING_NEW")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_event("MODEL_VERSION_CREATED", model_name="m"), "needs version"),
        (_event("TRANSITION_REQUEST_CREATED", version="1"), "needs model_name"),
        (_event("MODEL_VERSION_CREATED", model_name="m", version="0"), "version"),
        (_event("MODEL_VERSION_CREATED", model_name="m", version="x1"), "version"),
        ({"model_name": "m", "version": "1"}, "event"),
        (_event("model_version_created", model_name="m", version="1"), "event"),
    ],
)
def test_bad_registry_events_say_why(body, fragment):
    with pytest.raises(PayloadError) as caught:
        parse_registry_event(body)
    assert fragment in caught.value.reason


def test_requested_stage_comes_from_to_stage_else_from_the_event_name():
    generic = parse_registry_event(
        _event("TRANSITION_REQUEST_CREATED", model_name="m", version="1", to_stage="Staging")
    )
    implied = parse_registry_event(
        _event("TRANSITION_REQUEST_TO_PRODUCTION_CREATED", model_name="m", version="1")
    )
    unknown = parse_registry_event(
        _event("TRANSITION_REQUEST_CREATED", model_name="m", version="1")
    )
    assert requested_stage(generic) == "Staging"
    assert requested_stage(implied) == "Production"
    assert requested_stage(unknown) is None


def test_transition_comment_gives_the_verdict_and_failed_checks():
    failing = Verdict(
        (
            Check("test_accuracy", ">= 0.85", "0.6", False, "outside bound"),
            Check("test_recall", ">= 0.8", "0.92", True),
        )
    )
    passing = Verdict((Check("test_accuracy", ">= 0.85", "0.95", True),))
    rejected = transition_comment(failing, "Staging")
    approved = transition_comment(passing, "Production")
    assert rejected.startswith("regpilot: FAILED, rejected for Staging.")
    assert "test_accuracy: expected >= 0.85, got 0.6 (outside bound)" in rejected
    assert "test_recall" not in rejected
    assert approved.startswith("regpilot: PASSED, approved for Production.")
    assert "test_accuracy 0.95" in approved
    long = Verdict(tuple(Check(f"m{i}", ">= 1", "0", False, "x" * 50) for i in range(100)))
    assert len(transition_comment(long, "Staging")) == 1000


def test_replayed_bodies_share_one_identity():
    assert body_identity(b'{"a":1}') == body_identity(b'{"a":1}') != body_identity(b'{"a": 1}')


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "token", "client_id", "client_secret", "profile", "fragment"),
    [
        (None, True, False, False, None, "DATABRICKS_HOST"),
        ("https://h", False, False, False, None, "no credentials"),
        ("https://h", False, True, False, None, "together"),
        ("https://h", True, False, False, None, None),
        ("https://h", False, True, True, None, None),
        (None, False, False, False, "prod", None),
    ],
)
def test_auth_problem(host, token, client_id, client_secret, profile, fragment):
    problem = auth_problem(
        host, token=token, client_id=client_id, client_secret=client_secret, profile=profile
    )
    if fragment is None:
        assert problem is None
    else:
        assert problem is not None and fragment in problem


def test_configuration_needs_a_caller_check_and_paired_basic_credentials():
    base = {"databricks_enabled": True, "databricks_host": "https://h", "databricks_token": "t"}
    nobody = configuration_problems(Settings(**base))
    assert len(nobody) == 1 and "authenticate no caller" in nobody[0]
    half = configuration_problems(Settings(**base, databricks_jobs_username="u"))
    assert any("together" in p for p in half)
    assert configuration_problems(Settings(**base, databricks_webhook_secret="s")) == []
    jobs_only = Settings(**base, databricks_jobs_username="u", databricks_jobs_password="p")
    assert configuration_problems(jobs_only) == []
