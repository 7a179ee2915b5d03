"""Alias moves, each one recorded: automatic ones only go forward, a person's go anywhere."""

from __future__ import annotations

from regpilot.core.registry_port import NotFound, Unsupported
from regpilot.core.tags import PREVIOUS_CHAMPION, ROLLED_BACK
from regpilot.workflows.context import Context
from regpilot.workflows.governance import require_model, require_version
from regpilot.workflows.refusals import Refused
from regpilot.workflows.snapshot import ModelSnapshot, read_snapshot


def point_alias(ctx: Context, snapshot: ModelSnapshot, alias: str, version: int) -> ModelSnapshot:
    """Point `alias` at `version` in the registry's own terms; return the snapshot after it.

    Where the registry has no aliases (Databricks Workspace Model Registry), the version moves
    to the stage the policy maps the alias to, archiving the stage's previous version, so the
    stage has one holder as an alias does. Raises Unsupported when the alias maps to nothing.
    """
    name = snapshot.name
    stage = stage_for_alias(ctx, name, alias)
    if stage is None:
        ctx.registry.set_alias(name, alias, version)
        return snapshot.with_alias(alias, version)
    ctx.registry.transition_stage(name, version, stage, True)
    return snapshot.with_stage(version, stage, True).with_alias(alias, version)


def stage_for_alias(ctx: Context, name: str, alias: str) -> str | None:
    """Return the stage that stands for `alias` on a registry without aliases (None: has them).

    Raises Unsupported when the registry has no aliases and the policy maps `alias` to no stage.
    """
    capabilities = ctx.registry.capabilities
    if capabilities.supports_aliases:
        return None
    stage = ctx.policy.for_model(name).aliases.stage_for(alias)
    if stage is None or not capabilities.supports_stages:
        raise Unsupported(
            f"this registry ({capabilities.kind}) has no aliases and the policy maps "
            f"{alias!r} to no stage (aliases.challenger_stage / aliases.champion_stage)"
        )
    return stage


def move_alias_forward(
    ctx: Context, snapshot: ModelSnapshot, alias: str, version: int
) -> tuple[bool, ModelSnapshot]:
    """Point `alias` at `version` unless it already points at that version or a newer one.

    An alias never moves backwards: when runs finish out of order, the newest passing version
    keeps the alias. Returns whether the alias moved, and the snapshot after it. Where the
    alias maps to nothing on this registry, nothing moves (recorded once; never retried).
    Call with the model's lock held.
    """
    name = snapshot.name
    current = snapshot.aliases.get(alias)
    if current is not None and current >= version:
        return False, snapshot
    try:
        after = point_alias(ctx, snapshot, alias, version)
    except Unsupported as exc:
        ctx.record(
            name,
            "alias_unavailable",
            identity=f"{alias}:{version}",
            alias=alias,
            version=version,
            reason=str(exc),
        )
        return False, snapshot
    ctx.record(
        name,
        "alias",
        identity=f"{alias}:{version}",
        alias=alias,
        version=version,
        previous=current,
    )
    return True, after


def promote(
    ctx: Context, snapshot: ModelSnapshot, champion_alias: str, version: int
) -> tuple[int | None, ModelSnapshot]:
    """Move the champion alias to `version`, keeping the previous champion findable.

    The previous champion version is written to the new champion's `previous_champion` tag
    (before the alias moves) so `regpilot rollback` can restore it. Returns the previous
    champion version and the snapshot after the move.
    """
    name = snapshot.name
    previous = snapshot.aliases.get(champion_alias)
    if previous == version:
        return previous, snapshot
    tags = ctx.decision_tags("promotion", alias=champion_alias, previous=previous)
    if previous is not None:
        tags[PREVIOUS_CHAMPION] = str(previous)
    ctx.registry.set_version_tags(name, version, tags)
    after = point_alias(ctx, snapshot, champion_alias, version)
    ctx.record(
        name,
        "promotion",
        identity=f"{champion_alias}:{version}:{previous}",
        alias=champion_alias,
        version=version,
        previous=previous,
    )
    return previous, after


def set_alias_by_hand(ctx: Context, name: str, alias: str, version: int) -> int | None:
    """Point `alias` at `version` because a person said so, backwards too; return the old one.

    The model's champion alias goes through `promote`, so `regpilot rollback` can undo it.
    Call with the model's lock held.
    """
    require_version(ctx, name, version)  # an unknown version fails before anything moves
    stage_for_alias(ctx, name, alias)  # so does an alias this registry cannot hold
    snapshot = read_snapshot(ctx, name)
    if alias == ctx.policy.for_model(name).aliases.champion:
        return promote(ctx, snapshot, alias, version)[0]
    previous = snapshot.aliases.get(alias)
    if previous == version:
        return previous
    ctx.registry.set_version_tags(
        name, version, ctx.decision_tags("alias", alias=alias, previous=previous)
    )
    point_alias(ctx, snapshot, alias, version)
    ctx.record(name, "alias", alias=alias, version=version, previous=previous)
    return previous


def delete_alias_by_hand(ctx: Context, name: str, alias: str) -> int:
    """Remove `alias` from the model; return the version it pointed at. Hold the lock."""
    version = require_model(ctx, name).aliases.get(alias)
    if version is None:
        raise Refused(f"model {name!r} has no alias {alias!r}")
    ctx.registry.delete_alias(name, alias)
    ctx.registry.set_version_tags(name, version, ctx.decision_tags("alias_deleted", alias=alias))
    ctx.record(name, "alias_deleted", alias=alias, version=version)
    return version


def rollback(ctx: Context, name: str) -> tuple[int, int]:
    """Give the champion alias back to the previous champion; return (demoted, restored).

    The previous champion is the `previous_champion` tag that `promote` wrote on the current
    champion; rolling back again walks further back. Call with the model's lock held.
    """
    alias = ctx.policy.for_model(name).aliases.champion
    require_model(ctx, name)
    snapshot = read_snapshot(ctx, name)
    current = snapshot.aliases.get(alias)
    if current is None:
        raise Refused(f"model {name!r} has no {alias!r} alias: nothing to roll back")
    recorded = ctx.registry.get_version(name, current).tags.get(PREVIOUS_CHAMPION, "")
    if not recorded.isdigit() or int(recorded) == current:
        raise Refused(
            f"version {current} of {name!r} records no previous champion "
            f"(tag {PREVIOUS_CHAMPION}): nothing to roll back to"
        )
    target = int(recorded)
    try:
        ctx.registry.get_version(name, target)
    except NotFound as exc:
        raise Refused(
            f"the previous champion, version {target} of {name!r}, no longer exists; "
            f"{alias!r} stays on version {current}"
        ) from exc
    # The tags go first: a move that fails must not leave the demoted version promotable.
    ctx.registry.set_version_tags(
        name,
        current,
        {
            **ctx.decision_tags("rolled_back", alias=alias, restored=target),
            ROLLED_BACK: "true",
        },
    )
    ctx.registry.set_version_tags(
        name, target, ctx.decision_tags("rollback", alias=alias, restored_from=current)
    )
    point_alias(ctx, snapshot, alias, target)
    ctx.record(name, "rollback", alias=alias, version=target, previous=current)
    return current, target
