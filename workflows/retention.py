"""Retention passes: plan in core, apply through the port, never touch a protected version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.retention import PruneAction, RetentionPlan, VersionState, plan_retention
from core.tags import RETENTION_STATUS
from workflows.context import Context


@dataclass(frozen=True)
class RetentionResult:
    """A plan and what applying it did."""

    plan: RetentionPlan
    applied: tuple[int, ...]
    pages_read: int


def plan_for(ctx: Context, name: str, keep: int | None = None) -> tuple[RetentionPlan, int]:
    """Read the model's versions and aliases and plan a pass (changes nothing)."""
    rules = ctx.policy.for_model(name).retention_rules()
    if keep is not None:
        rules = type(rules)(keep=keep, action=rules.action, protected_stages=rules.protected_stages)
    states = [
        VersionState(v.version, v.aliases, v.stage, dict(v.tags))
        for v in ctx.registry.iter_versions(name)
    ]
    pages = int(getattr(ctx.registry, "pages_read", 0))
    # Search results on Unity Catalog carry no aliases: read them from the registered model.
    aliases = ctx.registry.get_registered_model(name).aliases
    extra: dict[int, str] = {}
    for alias, version in aliases.items():
        extra[version] = f"alias {alias}" if version not in extra else extra[version] + f",{alias}"
    return plan_retention(states, rules, extra), pages


def enforce_retention(
    ctx: Context,
    name: str,
    *,
    keep: int | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RetentionResult:
    """Plan and (unless dry_run) apply a retention pass. Call with the model's lock held."""
    plan, pages = plan_for(ctx, name, keep)
    applied: list[int] = []
    if not dry_run:
        total = len(plan.prune)
        for index, entry in enumerate(plan.prune, start=1):
            if plan.action is PruneAction.DELETE:
                ctx.registry.delete_version(name, entry.version)
            else:
                if ctx.registry.supports_stages:
                    ctx.registry.transition_stage(name, entry.version, "Archived", False)
                ctx.registry.set_version_tags(name, entry.version, {RETENTION_STATUS: "archived"})
            applied.append(entry.version)
            ctx.record(
                name,
                "retention",
                action=plan.action.value,
                version=entry.version,
                reason=entry.reason,
            )
            if progress is not None:
                progress(index, total)
    return RetentionResult(plan, tuple(applied), pages)
