"""Retention passes on the fake: protected versions are never touched; archive vs delete."""

from __future__ import annotations

from regpilot.workflows.retention import apply_plan, enforce_retention, plan_for
from regpilot.workflows.snapshot import read_snapshot
from tests.fakes import FakeRegistry

POLICY = """
defaults:
  metrics: {}
  retention: {keep: 2, action: %s}
"""


def _model_with(registry: FakeRegistry, count: int) -> None:
    for _ in range(count):
        run = registry.add_run({})
        [model] = registry.logged_models(run)
        registry.create_version("churn", model.uri, run.run_id, {}, None)


def test_archive_keeps_the_newest_and_every_protected_version(make_ctx):
    ctx = make_ctx(policy=POLICY % "archive")
    registry = ctx.registry
    _model_with(registry, 7)
    registry.set_alias("churn", "challenger", 1)
    registry.set_alias("churn", "legacy", 2)
    registry.set_stage_directly("churn", 3, "Production")
    registry.set_version_tags("churn", 4, {"retention_hold": "true"})
    result = enforce_retention(ctx, read_snapshot(ctx, "churn"))
    assert result.applied == (5,)
    assert registry.get_version("churn", 5).stage == "Archived"
    assert registry.get_version("churn", 5).tags["retention_status"] == "archived"
    for untouched in (1, 2, 3, 4, 6, 7):
        version = registry.get_version("churn", untouched)
        assert "retention_status" not in version.tags and version.stage != "Archived"
    # A second pass finds nothing left to do.
    assert enforce_retention(ctx, read_snapshot(ctx, "churn")).applied == ()


def test_delete_removes_and_already_deleted_counts_as_done(make_ctx):
    ctx = make_ctx(policy=POLICY % "delete")
    registry = ctx.registry
    _model_with(registry, 5)
    registry.set_alias("churn", "champion", 1)
    plan = plan_for(ctx, read_snapshot(ctx, "churn"))
    assert sorted(e.version for e in plan.prune) == [2, 3]
    registry.delete_version("churn", 2)  # someone got there first
    assert sorted(apply_plan(ctx, "churn", plan)) == [2, 3]
    assert sorted(v.version for v in registry.iter_versions("churn")) == [1, 4, 5]


def test_the_rollback_target_is_protected(make_ctx):
    ctx = make_ctx(policy=POLICY % "delete")
    registry = ctx.registry
    _model_with(registry, 5)
    registry.set_alias("churn", "champion", 3)
    registry.set_version_tags("churn", 3, {"previous_champion": "1"})
    plan = plan_for(ctx, read_snapshot(ctx, "churn"))
    assert [e.version for e in plan.prune] == [2]
    assert 1 in [e.version for e in plan.protected]


def test_on_unity_catalog_archiving_is_a_tag_not_a_stage(make_ctx):
    ctx = make_ctx(FakeRegistry.unity_catalog(), policy=POLICY % "archive")
    _model_with(ctx.registry, 3)
    assert enforce_retention(ctx, read_snapshot(ctx, "churn")).applied == (1,)
    archived = ctx.registry.get_version("churn", 1)
    assert archived.stage is None and archived.tags["retention_status"] == "archived"
    assert ctx.registry.calls["transition_stage"] == 0
