"""The run path on the fake: gate, registration once, challenger forward only, verdict first."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from regpilot.core.registry_port import TransientRegistryError
from regpilot.workflows.run_completed import RunNotFinished, process_run_completed
from tests.fakes import FakeRegistry
from tests.unit.workflows.conftest import FAILING, PASSING


def test_a_passing_run_is_registered_tagged_and_becomes_challenger(make_ctx):
    ctx = make_ctx()
    registry = ctx.registry
    run = registry.add_run(PASSING)
    [outcome] = process_run_completed(ctx, run.run_id, "churn")
    assert outcome.status == "PASSED" and outcome.created and outcome.version == 1
    assert outcome.aliases == ["challenger"]
    stored = registry.get_version("churn", 1)
    assert stored.tags["validation_status"] == "PASSED"
    assert stored.tags["source_run_id"] == run.run_id
    assert registry.get_registered_model("churn").aliases == {"challenger": 1}
    assert registry.get_run(run.run_id).tags["validation_status"] == "PASSED"
    kinds = [d["kind"] for d in ctx.store.decisions("churn")]
    assert kinds == ["alias", "registration", "gate"]


def test_a_failing_run_is_not_registered_and_its_run_says_why(make_ctx):
    ctx = make_ctx()
    run = ctx.registry.add_run(FAILING)
    [outcome] = process_run_completed(ctx, run.run_id, "churn")
    assert outcome.status == "FAILED" and outcome.version is None
    assert "churn" not in ctx.registry.models
    tags = ctx.registry.get_run(run.run_id).tags
    assert tags["validation_status"] == "FAILED"
    assert "test_accuracy" in tags["validation_report"]
    [gate] = ctx.store.decisions("churn")
    assert gate["kind"] == "gate" and gate["verdict"] == "FAILED"


def test_a_redelivered_event_finds_the_version_from_the_same_run_and_model(make_ctx):
    ctx = make_ctx()
    run = ctx.registry.add_run(PASSING)
    process_run_completed(ctx, run.run_id, "churn")
    [again] = process_run_completed(ctx, run.run_id, "churn")
    assert again.version == 1 and not again.created and again.aliases == []
    assert [v.version for v in ctx.registry.iter_versions("churn")] == [1]
    assert ctx.registry.calls["create_version"] == 1


def test_the_challenger_only_moves_forward(make_ctx):
    ctx = make_ctx()
    first = ctx.registry.add_run(PASSING)
    second = ctx.registry.add_run(PASSING)
    process_run_completed(ctx, first.run_id, "churn")
    process_run_completed(ctx, second.run_id, "churn")
    assert ctx.registry.get_registered_model("churn").aliases["challenger"] == 2
    # The first run's event comes again (a redelivery): version 1 must not take the alias back.
    [again] = process_run_completed(ctx, first.run_id, "churn")
    assert again.aliases == []
    assert ctx.registry.get_registered_model("churn").aliases["challenger"] == 2


def test_a_run_still_running_is_retried_later_not_judged(make_ctx):
    ctx = make_ctx()
    run = ctx.registry.add_run(PASSING, status="RUNNING")
    with pytest.raises(RunNotFinished):
        process_run_completed(ctx, run.run_id, "churn")
    assert "validation_status" not in ctx.registry.get_run(run.run_id).tags
    ctx.registry.finish_run(run.run_id)
    [outcome] = process_run_completed(ctx, run.run_id, "churn")
    assert outcome.status == "PASSED"


class AliasOutage(FakeRegistry):
    """A registry whose alias calls fail (an outage, or a registry refusing them)."""

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.calls["set_alias"] += 1
        raise TransientRegistryError("503: alias service down")


def test_verdict_tags_are_written_before_the_alias_moves(make_ctx):
    ctx = make_ctx(AliasOutage())
    run = ctx.registry.add_run(PASSING)
    with pytest.raises(TransientRegistryError):
        process_run_completed(ctx, run.run_id, "churn")
    # The move failed, yet both the version and the run carry their verdict.
    assert ctx.registry.get_version("churn", 1).tags["validation_status"] == "PASSED"
    assert ctx.registry.get_run(run.run_id).tags["validation_status"] == "PASSED"


def test_a_steady_state_event_makes_no_more_registry_calls_than_before(make_ctx):
    # The benchmark counted 8 MLflow calls per event (docs/BENCHMARKS.md): logged_models is two
    # of them (the logged model and its MLmodel), every other port call one.
    ctx = make_ctx()
    registry = ctx.registry
    process_run_completed(ctx, registry.add_run(PASSING).run_id, "churn")
    registry.calls.clear()
    process_run_completed(ctx, registry.add_run(PASSING).run_id, "churn")
    assert registry.calls == Counter(
        get_run=1,
        logged_models=1,
        iter_versions=1,
        get_registered_model=1,
        create_version=1,
        set_alias=1,
        set_run_tags=1,
    )
    assert sum(registry.calls.values()) + 1 <= 8


def test_the_first_event_of_a_model_skips_the_alias_read(make_ctx):
    ctx = make_ctx()
    process_run_completed(ctx, ctx.registry.add_run(PASSING).run_id, "churn")
    assert ctx.registry.calls["get_registered_model"] == 0
    assert sum(ctx.registry.calls.values()) + 1 <= 8


def test_the_run_tag_names_the_model_and_the_policy_maps_experiments(make_ctx):
    ctx = make_ctx(policy="name_mapping: {fraud-experiment: fraud}\n")
    mapped = ctx.registry.add_run(PASSING, experiment="fraud-experiment")
    [outcome] = process_run_completed(ctx, mapped.run_id, None)
    assert outcome.model_name == "fraud"
    tagged = ctx.registry.add_run(PASSING, tags={"regpilot_model_name": "other"})
    [outcome] = process_run_completed(ctx, tagged.run_id, None)
    assert outcome.model_name == "other"


def test_the_report_fits_a_tag(make_ctx):
    ctx = make_ctx()
    run = ctx.registry.add_run(FAILING)
    process_run_completed(ctx, run.run_id, "churn")
    report = ctx.registry.get_run(run.run_id).tags["validation_report"]
    assert len(report) <= 1000 and json.loads(report)["status"] == "FAILED"
