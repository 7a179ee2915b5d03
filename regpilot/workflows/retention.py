"""Retention passes: plan in core, apply through the port, never touch a protected version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from regpilot.core.retention import PruneAction, RetentionPlan, VersionState, plan_retention
from regpilot.core.tags import PREVIOUS_CHAMPION, RETENTION_STATUS
from regpilot.workflows.context import Context
from regpilot.workflows.snapshot import ModelSnapshot


@dataclass(frozen=True)
class RetentionResult:
    """A plan and what applying it did."""

    plan: RetentionPlan
    applied: tuple[int, ...]
    pages_read: int


def plan_for(ctx: Context, snapshot: ModelSnapshot, keep: int | None = None) -> RetentionPlan:
    """Plan a retention pass over the snapshot (changes nothing).

    Every alias holder in the snapshot (on a registry without aliases, the version in each
    alias's stage) is protected, and so is the champion's rollback target.
    """
    name = snapshot.name
    rules = ctx.policy.for_model(name).retention_rules()
    if keep is not None:
        rules = type(rules)(keep=keep, action=rules.action, protected_stages=rules.protected_stages)
    aliases = snapshot.aliases
    # Version search results carry no aliases: the snapshot's alias map is the whole truth.
    states = [
        VersionState(
            v.version,
            tuple(a for a, n in aliases.items() if n == v.version),
            v.stage,
            dict(v.tags),
        )
        for v in snapshot.versions
    ]
    extra: dict[int, str] = {}
    for alias, version in aliases.items():
        extra[version] = f"alias {alias}" if version not in extra else extra[version] + f",{alias}"
    rollback_target = _rollback_target(
        states, aliases.get(ctx.policy.for_model(name).aliases.champion)
    )
    if rollback_target is not None:
        extra.setdefault(rollback_target, "previous champion (the rollback target)")
    return plan_retention(states, rules, extra)


def _rollback_target(states: list[VersionState], champion: int | None) -> int | None:
    # `regpilot rollback` restores the version named by the champion's previous_champion tag,
    # so retention must leave that version in place.
    for state in states:
        if state.version == champion:
            recorded = state.tags.get(PREVIOUS_CHAMPION, "")
            return int(recorded) if recorded.isdigit() else None
    return None


def enforce_retention(
    ctx: Context,
    snapshot: ModelSnapshot,
    *,
    keep: int | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RetentionResult:
    """Plan and (unless dry_run) apply a retention pass. Call with the model's lock held."""
    plan = plan_for(ctx, snapshot, keep)
    applied = () if dry_run else apply_plan(ctx, snapshot.name, plan, progress)
    return RetentionResult(plan, applied, snapshot.pages_read)


def apply_plan(
    ctx: Context,
    name: str,
    plan: RetentionPlan,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, ...]:
    """Archive or delete the plan's versions, recording each; return the versions done.

    Call with the model's lock held, on a plan made under the same lock.
    """
    applied: list[int] = []
    total = len(plan.prune)
    for index, entry in enumerate(plan.prune, start=1):
        if plan.action is PruneAction.DELETE:
            ctx.registry.delete_version(name, entry.version)
        else:
            if ctx.registry.capabilities.supports_stages:
                ctx.registry.transition_stage(name, entry.version, "Archived", False)
            decision = ctx.decision_tags("retention", action="archive", reason=entry.reason)
            ctx.registry.set_version_tags(
                name, entry.version, {RETENTION_STATUS: "archived", **decision}
            )
        applied.append(entry.version)
        ctx.record(
            name,
            "retention",
            identity=f"{plan.action.value}:{entry.version}",
            action=plan.action.value,
            version=entry.version,
            reason=entry.reason,
        )
        if progress is not None:
            progress(index, total)
    return tuple(applied)
