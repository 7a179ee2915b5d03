"""Alias moves, each one recorded: automatic ones only go forward, a person's go anywhere."""

from __future__ import annotations

from collections.abc import Mapping

from regpilot.core.registry_port import NotFound
from regpilot.core.tags import PREVIOUS_CHAMPION, ROLLED_BACK
from regpilot.workflows.context import Context
from regpilot.workflows.governance import require_model, require_version
from regpilot.workflows.refusals import Refused


def move_alias_forward(
    ctx: Context,
    name: str,
    alias: str,
    version: int,
    aliases: Mapping[str, int] | None = None,
) -> bool:
    """Point `alias` at `version` unless it already points at that version or a newer one.

    An alias never moves backwards: when runs finish out of order, the newest passing version
    keeps the alias. Returns True when the alias moved. Call with the model's lock held.
    `aliases`: the model's alias map when the caller has just read it (else it is read here).
    """
    if aliases is None:
        aliases = ctx.registry.get_registered_model(name).aliases
    current = aliases.get(alias)
    if current is not None and current >= version:
        return False
    ctx.registry.set_alias(name, alias, version)
    ctx.record(
        name,
        "alias",
        identity=f"{alias}:{version}",
        alias=alias,
        version=version,
        previous=current,
    )
    return True


def promote(ctx: Context, name: str, champion_alias: str, version: int) -> int | None:
    """Move the champion alias to `version`, keeping the previous champion findable.

    The previous champion version is written to the new champion's `previous_champion` tag so
    `regpilot rollback` can restore it. Returns the previous champion version.
    """
    previous = ctx.registry.get_registered_model(name).aliases.get(champion_alias)
    if previous == version:
        return previous
    tags = ctx.decision_tags("promotion", alias=champion_alias, previous=previous)
    if previous is not None:
        tags[PREVIOUS_CHAMPION] = str(previous)
    ctx.registry.set_version_tags(name, version, tags)
    ctx.registry.set_alias(name, champion_alias, version)
    ctx.record(
        name,
        "promotion",
        identity=f"{champion_alias}:{version}:{previous}",
        alias=champion_alias,
        version=version,
        previous=previous,
    )
    return previous


def set_alias_by_hand(ctx: Context, name: str, alias: str, version: int) -> int | None:
    """Point `alias` at `version` because a person said so, backwards too; return the old one.

    The model's champion alias goes through `promote`, so `regpilot rollback` can undo it.
    Call with the model's lock held.
    """
    require_version(ctx, name, version)  # an unknown version fails before anything moves
    if alias == ctx.policy.for_model(name).aliases.champion:
        return promote(ctx, name, alias, version)
    previous = ctx.registry.get_registered_model(name).aliases.get(alias)
    if previous == version:
        return previous
    ctx.registry.set_alias(name, alias, version)
    ctx.registry.set_version_tags(
        name, version, ctx.decision_tags("alias", alias=alias, previous=previous)
    )
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
    current = require_model(ctx, name).aliases.get(alias)
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
    ctx.registry.set_alias(name, alias, target)
    ctx.registry.set_version_tags(
        name, target, ctx.decision_tags("rollback", alias=alias, restored_from=current)
    )
    ctx.registry.set_version_tags(
        name,
        current,
        {
            **ctx.decision_tags("rolled_back", alias=alias, restored=target),
            ROLLED_BACK: "true",
        },
    )
    ctx.record(name, "rollback", alias=alias, version=target, previous=current)
    return current, target
