"""Retention passes: plan in core, apply through the port, never touch a protected version."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from regpilot.core.registry_port import ModelVersion
from regpilot.core.retention import PruneAction, RetentionPlan, VersionState, plan_retention
from regpilot.core.tags import PREVIOUS_CHAMPION, RETENTION_STATUS
from regpilot.workflows.context import Context


@dataclass(frozen=True)
class RetentionResult:
    """A plan and what applying it did."""

    plan: RetentionPlan
    applied: tuple[int, ...]
    pages_read: int


def plan_for(
    ctx: Context,
    name: str,
    keep: int | None = None,
    versions: Sequence[ModelVersion] | None = None,
    aliases: Mapping[str, int] | None = None,
) -> tuple[RetentionPlan, int]:
    """Read the model's versions and aliases and plan a pass (changes nothing).

    `versions` and `aliases`: what the caller read earlier under the same lock and kept up to
    date, so a task reads each once.
    """
    rules = ctx.policy.for_model(name).retention_rules()
    if keep is not None:
        rules = type(rules)(keep=keep, action=rules.action, protected_stages=rules.protected_stages)
    states = [
        VersionState(v.version, v.aliases, v.stage, dict(v.tags))
        for v in (versions if versions is not None else ctx.registry.iter_versions(name))
    ]
    pages = int(getattr(ctx.registry, "pages_read", 0))
    if aliases is None:
        # Version search results carry no aliases: read them from the registered model.
        aliases = ctx.registry.get_registered_model(name).aliases
    else:
        # The caller's map is newer than the alias lists the versions were read with.
        states = [
            replace(s, aliases=tuple(a for a, v in aliases.items() if v == s.version))
            for s in states
        ]
    extra: dict[int, str] = {}
    for alias, version in aliases.items():
        extra[version] = f"alias {alias}" if version not in extra else extra[version] + f",{alias}"
    rollback_target = _rollback_target(
        states, aliases.get(ctx.policy.for_model(name).aliases.champion)
    )
    if rollback_target is not None:
        extra.setdefault(rollback_target, "previous champion (the rollback target)")
    return plan_retention(states, rules, extra), pages


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
    name: str,
    *,
    keep: int | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    versions: Sequence[ModelVersion] | None = None,
    aliases: Mapping[str, int] | None = None,
) -> RetentionResult:
    """Plan and (unless dry_run) apply a retention pass. Call with the model's lock held."""
    plan, pages = plan_for(ctx, name, keep, versions, aliases)
    applied = () if dry_run else apply_plan(ctx, name, plan, progress)
    return RetentionResult(plan, applied, pages)


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
            if ctx.registry.supports_stages:
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
