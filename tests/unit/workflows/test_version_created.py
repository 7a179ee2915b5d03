"""A version registered outside regpilot: same gate, verdict tags first, then the challenger."""

from __future__ import annotations

import pytest

from regpilot.core.registry_port import TransientRegistryError
from regpilot.workflows.run_completed import process_run_completed
from regpilot.workflows.version_created import process_version_created
from tests.fakes import FakeRegistry
from tests.unit.workflows.conftest import FAILING, PASSING


def _by_hand(registry: FakeRegistry, metrics: dict[str, float]) -> int:
    run = registry.add_run(metrics)
    [model] = registry.logged_models(run)
    return registry.create_version("churn", model.uri, run.run_id, {}, None).version


def test_a_passing_version_is_tagged_and_becomes_challenger(make_ctx):
    ctx = make_ctx()
    version = _by_hand(ctx.registry, PASSING)
    assert process_version_created(ctx, "churn", version).status == "PASSED"
    tags = ctx.registry.get_version("churn", version).tags
    assert tags["validation_status"] == "PASSED" and tags["framework"] == "sklearn"
    assert ctx.registry.get_registered_model("churn").aliases == {"challenger": version}


def test_a_failing_version_is_tagged_and_gets_no_alias(make_ctx):
    ctx = make_ctx()
    version = _by_hand(ctx.registry, FAILING)
    assert process_version_created(ctx, "churn", version).status == "FAILED"
    assert ctx.registry.get_version("churn", version).tags["validation_status"] == "FAILED"
    assert ctx.registry.get_registered_model("churn").aliases == {}


class FlakyAlias(FakeRegistry):
    """Alias calls fail until `healthy` is set."""

    healthy = False

    def set_alias(self, name: str, alias: str, version: int) -> None:
        if not self.healthy:
            raise TransientRegistryError("503")
        super().set_alias(name, alias, version)


def test_a_failed_alias_move_keeps_the_verdict_and_the_retry_finishes_it(make_ctx):
    ctx = make_ctx(FlakyAlias())
    version = _by_hand(ctx.registry, PASSING)
    with pytest.raises(TransientRegistryError):
        process_version_created(ctx, "churn", version)
    assert ctx.registry.get_version("churn", version).tags["validation_status"] == "PASSED"
    ctx.registry.healthy = True
    outcome = process_version_created(ctx, "churn", version)  # the task's retry
    assert outcome.status == "skipped"
    assert ctx.registry.get_registered_model("churn").aliases == {"challenger": version}


def test_a_version_regpilot_registered_is_skipped_without_more_calls(make_ctx):
    ctx = make_ctx()
    run = ctx.registry.add_run(PASSING)
    process_run_completed(ctx, run.run_id, "churn")
    ctx.registry.calls.clear()
    assert process_version_created(ctx, "churn", 1).status == "skipped"
    assert dict(ctx.registry.calls) == {"get_version": 1}


def test_an_older_version_validated_late_does_not_take_the_challenger_back(make_ctx):
    ctx = make_ctx()
    older = _by_hand(ctx.registry, PASSING)
    newer = _by_hand(ctx.registry, PASSING)
    process_version_created(ctx, "churn", newer)
    process_version_created(ctx, "churn", older)
    assert ctx.registry.get_registered_model("churn").aliases == {"challenger": newer}
