"""The retention planner: newest N, protected versions, archive vs delete (property tests)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from regpilot.core.retention import PruneAction, RetentionRules, VersionState, plan_retention


def _versions(n: int, **extra: VersionState) -> list[VersionState]:
    return [VersionState(v) for v in range(1, n + 1)]


def test_keeps_newest_and_prunes_oldest():
    plan = plan_retention(_versions(6), RetentionRules(keep=3))
    assert [e.version for e in plan.kept] == [6, 5, 4]
    assert sorted(e.version for e in plan.prune) == [1, 2, 3]


def test_aliased_stage_and_hold_versions_are_protected_with_reasons():
    versions = [
        VersionState(1, aliases=("champion",)),
        VersionState(2, stage="Production"),
        VersionState(3, tags={"retention_hold": "true"}),
        VersionState(4),
        VersionState(5),
        VersionState(6),
        VersionState(7),
    ]
    plan = plan_retention(versions, RetentionRules(keep=3))
    reasons = {e.version: e.reason for e in plan.protected}
    assert reasons == {1: "alias champion", 2: "stage Production", 3: "tag retention_hold"}
    assert [e.version for e in plan.prune] == [4]


def test_extra_protection_from_registered_model_aliases():
    plan = plan_retention(_versions(5), RetentionRules(keep=1), {2: "alias champion"})
    assert {e.version for e in plan.protected} == {2}
    assert 2 not in {e.version for e in plan.prune}


def test_already_archived_is_left_alone_by_archive_and_deleted_by_delete():
    versions = [VersionState(1, stage="Archived"), VersionState(2), VersionState(3)]
    archive = plan_retention(versions, RetentionRules(keep=2))
    assert archive.is_empty and [e.version for e in archive.already_archived] == [1]
    delete = plan_retention(versions, RetentionRules(keep=2, action=PruneAction.DELETE))
    assert [e.version for e in delete.prune] == [1]


def test_archived_versions_do_not_count_towards_keep():
    versions = [
        VersionState(5, stage="Archived"),
        VersionState(4),
        VersionState(3),
        VersionState(2),
    ]
    plan = plan_retention(versions, RetentionRules(keep=2))
    assert [e.version for e in plan.kept] == [4, 3]
    assert [e.version for e in plan.prune] == [2]


version_states = st.lists(
    st.builds(
        VersionState,
        version=st.integers(min_value=1, max_value=500),
        aliases=st.sampled_from([(), ("champion",), ("challenger", "x")]),
        stage=st.sampled_from([None, "Production", "Staging", "Archived", "None"]),
        tags=st.sampled_from([{}, {"retention_hold": "true"}, {"retention_status": "archived"}]),
    ),
    max_size=60,
    unique_by=lambda s: s.version,
)


@given(
    states=version_states,
    keep=st.integers(min_value=1, max_value=20),
    action=st.sampled_from(list(PruneAction)),
)
def test_plan_invariants(states, keep, action):
    rules = RetentionRules(keep=keep, action=action)
    plan = plan_retention(states, rules)
    pruned = {e.version for e in plan.prune}
    kept = {e.version for e in plan.kept}
    by_version = {s.version: s for s in states}
    # Every version lands in exactly one bucket.
    buckets = [
        kept,
        pruned,
        {e.version for e in plan.protected},
        {e.version for e in plan.already_archived},
    ]
    assert sum(len(b) for b in buckets) == len(states)
    assert set().union(*buckets) == set(by_version)
    for version in pruned:
        state = by_version[version]
        assert not state.aliases, "an aliased version is never pruned"
        assert state.stage not in rules.protected_stages
        assert state.tags.get("retention_hold") != "true"
        assert all(version < k for k in kept), "only versions older than every kept one go"
    live = [s for s in states if not s.archived]
    assert len(kept) == min(keep, len(live))
