"""Never bless what cannot be served: a failed run, a model not READY, no MLmodel file."""

from __future__ import annotations

import json

import pytest

from regpilot.core.registry_port import RunPhase, run_phase
from regpilot.workflows.run_completed import RunNotFinished, process_run_completed
from regpilot.workflows.version_created import process_version_created
from tests.unit.workflows.conftest import PASSING


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("RUNNING", RunPhase.NOT_FINISHED),
        ("SCHEDULED", RunPhase.NOT_FINISHED),
        ("FINISHED", RunPhase.FINISHED),
        ("FAILED", RunPhase.FAILED),
        ("KILLED", RunPhase.FAILED),
        ("UNKNOWN", RunPhase.UNKNOWN),
        (None, RunPhase.UNKNOWN),
    ],
)
def test_one_rule_says_which_run_states_are_finished(status, phase):
    assert run_phase(status) is phase


UNSERVABLE = {
    "failed run": ({"status": "FAILED"}, "run_status", "the run ended FAILED"),
    "killed run": ({"status": "KILLED"}, "run_status", "the run ended KILLED"),
    "failed model": ({"model_status": "FAILED"}, "model_status", "the logged model is FAILED"),
    "pending model": ({"model_status": "PENDING"}, "model_status", "is PENDING, not READY"),
    "no MLmodel": ({"has_mlmodel": False}, "mlmodel", "has no MLmodel file"),
}


@pytest.mark.parametrize("case", sorted(UNSERVABLE))
def test_the_run_path_fails_what_cannot_be_served(make_ctx, case):
    run_kwargs, check, reason = UNSERVABLE[case]
    ctx = make_ctx()
    run = ctx.registry.add_run(PASSING, **run_kwargs)  # metrics that would pass
    [outcome] = process_run_completed(ctx, run.run_id, "churn")
    assert outcome.status == "FAILED" and outcome.version is None
    assert "churn" not in ctx.registry.models  # never registered, so never `challenger`
    tags = ctx.registry.get_run(run.run_id).tags
    assert tags["validation_status"] == "FAILED"
    report = json.loads(tags["validation_report"])
    assert report["checks"][0][0] == check and report["checks"][0][3] == "FAILED"
    assert any(reason in r for r in report["reasons"])
    [gate] = ctx.store.decisions("churn")
    assert gate["verdict"] == "FAILED"
    assert any(c["name"] == check and reason in c["reason"] for c in gate["checks"])


@pytest.mark.parametrize("case", sorted(UNSERVABLE))
def test_a_version_registered_by_hand_from_it_fails_too(make_ctx, case):
    run_kwargs, check, reason = UNSERVABLE[case]
    ctx = make_ctx()
    registry = ctx.registry
    run = registry.add_run(PASSING, **run_kwargs)
    [model] = registry.logged_models(run)
    registry.create_version("churn", model.uri, run.run_id, {}, None)  # someone else did it
    outcome = process_version_created(ctx, "churn", 1)
    assert outcome.status == "FAILED"
    tags = registry.get_version("churn", 1).tags
    assert tags["validation_status"] == "FAILED" and reason in tags["validation_report"]
    assert check in tags["validation_report"]
    assert registry.get_registered_model("churn").aliases == {}


def test_a_version_of_a_run_still_running_waits_for_the_run(make_ctx):
    ctx = make_ctx()
    run = ctx.registry.add_run(PASSING, status="RUNNING")
    [model] = ctx.registry.logged_models(run)
    ctx.registry.create_version("churn", model.uri, run.run_id, {}, None)
    with pytest.raises(RunNotFinished):
        process_version_created(ctx, "churn", 1)
    assert "validation_status" not in ctx.registry.get_version("churn", 1).tags
    ctx.registry.finish_run(run.run_id, "KILLED")
    assert process_version_created(ctx, "churn", 1).status == "FAILED"


def test_a_healthy_model_reports_no_servability_checks(make_ctx):
    ctx = make_ctx()
    run = ctx.registry.add_run(PASSING)
    [outcome] = process_run_completed(ctx, run.run_id, "churn")
    names = [c["name"] for c in outcome.as_dict()["checks"]]
    assert outcome.status == "PASSED"
    assert not {"run_status", "model_status", "mlmodel"} & set(names)
