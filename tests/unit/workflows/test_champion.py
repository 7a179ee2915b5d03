"""Champion promotion and rollback on the fake: a rolled-back champion stays demoted."""

from __future__ import annotations

import pytest

from regpilot.workflows.aliases import rollback, set_alias_by_hand
from regpilot.workflows.refusals import Refused
from regpilot.workflows.run_completed import process_run_completed

AUTO = """
defaults:
  metrics: {test_accuracy: {min: 0.5}}
  champion: {metric: test_accuracy, min_improvement: 0.01}
  auto_promote: true
"""


def _event(ctx, accuracy: float) -> list[str]:
    run = ctx.registry.add_run({"test_accuracy": accuracy})
    [outcome] = process_run_completed(ctx, run.run_id, "churn")
    return outcome.aliases


def _aliases(ctx) -> dict[str, int]:
    return dict(ctx.registry.get_registered_model("churn").aliases)


def test_a_challenger_that_beats_the_champion_by_the_margin_is_promoted(make_ctx):
    ctx = make_ctx(policy=AUTO)
    assert _event(ctx, 0.80) == ["challenger", "champion"]  # no champion yet
    assert _event(ctx, 0.805) == []  # fails the gate: does not beat v1 by 0.01
    assert _event(ctx, 0.90) == ["challenger", "champion"]
    assert _aliases(ctx) == {"challenger": 2, "champion": 2}
    assert ctx.registry.get_version("churn", 2).tags["previous_champion"] == "1"


def test_a_rolled_back_champion_is_never_promoted_again(make_ctx):
    ctx = make_ctx(policy=AUTO)
    first = ctx.registry.add_run({"test_accuracy": 0.80})
    second = ctx.registry.add_run({"test_accuracy": 0.90})
    process_run_completed(ctx, first.run_id, "churn")
    process_run_completed(ctx, second.run_id, "churn")
    assert rollback(ctx, "churn") == (2, 1)
    assert _aliases(ctx)["champion"] == 1
    assert ctx.registry.get_version("churn", 2).tags["rolled_back"] == "true"
    # The demoted version's event is redelivered: it still beats v1, yet stays demoted.
    [again] = process_run_completed(ctx, second.run_id, "churn")
    assert "champion" not in again.aliases
    assert _aliases(ctx)["champion"] == 1


def test_rollback_without_a_previous_champion_is_refused(make_ctx):
    ctx = make_ctx(policy=AUTO)
    _event(ctx, 0.80)
    with pytest.raises(Refused, match="no previous champion"):
        rollback(ctx, "churn")


def test_a_person_may_move_the_champion_backwards_and_roll_it_back(make_ctx):
    ctx = make_ctx(policy=AUTO)
    _event(ctx, 0.80)
    _event(ctx, 0.90)
    assert set_alias_by_hand(ctx, "churn", "champion", 1) == 2
    assert ctx.registry.get_version("churn", 1).tags["previous_champion"] == "2"
    assert rollback(ctx, "churn") == (1, 2)
