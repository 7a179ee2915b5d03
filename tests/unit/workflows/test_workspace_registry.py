"""The Databricks Workspace Model Registry has no aliases: challenger/champion become stages."""

from __future__ import annotations

from regpilot.workflows.aliases import rollback
from regpilot.workflows.run_completed import process_run_completed
from regpilot.workflows.version_created import process_version_created
from tests.fakes import FakeRegistry
from tests.unit.workflows.conftest import PASSING

AUTO = """
defaults:
  metrics: {test_accuracy: {min: 0.5}}
  champion: {metric: test_accuracy, min_improvement: 0.01}
  auto_promote: true
"""


def _stages(registry: FakeRegistry) -> dict[int, str | None]:
    return {v.version: v.stage for v in registry.iter_versions("churn")}


def test_the_challenger_is_the_version_in_staging(make_ctx):
    ctx = make_ctx(FakeRegistry.workspace())
    for _ in range(2):
        [outcome] = process_run_completed(ctx, ctx.registry.add_run(PASSING).run_id, "churn")
        assert outcome.aliases == ["challenger"]
    assert _stages(ctx.registry) == {1: "Archived", 2: "Staging"}
    assert ctx.registry.calls["set_alias"] == 0  # never asked: it would be Unsupported
    [again] = process_run_completed(ctx, "run0001", "churn")  # a redelivery of the first
    assert again.aliases == [] and _stages(ctx.registry)[2] == "Staging"


def test_promotion_and_rollback_move_production(make_ctx):
    ctx = make_ctx(FakeRegistry.workspace(), policy=AUTO)
    process_run_completed(ctx, ctx.registry.add_run({"test_accuracy": 0.8}).run_id, "churn")
    process_run_completed(ctx, ctx.registry.add_run({"test_accuracy": 0.9}).run_id, "churn")
    assert _stages(ctx.registry) == {1: "Archived", 2: "Production"}
    assert rollback(ctx, "churn") == (2, 1)
    assert _stages(ctx.registry) == {1: "Production", 2: "Archived"}
    assert ctx.registry.get_version("churn", 2).tags["rolled_back"] == "true"


def test_without_a_mapped_stage_nothing_moves_and_nothing_is_retried(make_ctx):
    policy = "defaults:\n  aliases: {challenger_stage: null}\n"
    ctx = make_ctx(FakeRegistry.workspace(), policy=policy)
    run = ctx.registry.add_run(PASSING)
    [outcome] = process_run_completed(ctx, run.run_id, "churn")  # no exception: no retry loop
    assert outcome.status == "PASSED" and outcome.aliases == []
    assert _stages(ctx.registry) == {1: None}
    assert ctx.registry.get_version("churn", 1).tags["validation_status"] == "PASSED"
    assert ctx.registry.get_run(run.run_id).tags["validation_status"] == "PASSED"
    kinds = [d["kind"] for d in ctx.store.decisions("churn")]
    assert "alias_unavailable" in kinds


def test_a_version_registered_there_by_hand_goes_to_staging(make_ctx):
    ctx = make_ctx(FakeRegistry.workspace())
    run = ctx.registry.add_run(PASSING)
    [model] = ctx.registry.logged_models(run)
    ctx.registry.create_version("churn", model.uri, run.run_id, {}, None)
    assert process_version_created(ctx, "churn", 1).status == "PASSED"
    assert _stages(ctx.registry) == {1: "Staging"}


def test_unity_catalog_requires_a_signature_whatever_the_policy(make_ctx):
    ctx = make_ctx(FakeRegistry.unity_catalog())
    run = ctx.registry.add_run(PASSING, has_signature=False)
    [outcome] = process_run_completed(ctx, run.run_id, "main.ml.churn")
    assert outcome.status == "FAILED"
    assert outcome.verdict.failures[0].name == "signature"


def test_an_alias_with_no_stage_is_refused_there_by_hand(make_ctx):
    import pytest

    from regpilot.core.registry_port import Unsupported
    from regpilot.workflows.aliases import set_alias_by_hand

    ctx = make_ctx(FakeRegistry.workspace())
    process_run_completed(ctx, ctx.registry.add_run(PASSING).run_id, "churn")
    before = dict(ctx.registry.get_version("churn", 1).tags)
    with pytest.raises(Unsupported, match="maps 'shadow' to no stage"):
        set_alias_by_hand(ctx, "churn", "shadow", 1)
    assert ctx.registry.get_version("churn", 1).tags == before  # refused before any write
    assert set_alias_by_hand(ctx, "churn", "champion", 1) is None
    assert _stages(ctx.registry) == {1: "Production"}
