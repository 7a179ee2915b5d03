"""Alias moves: forward only, under the model's lock, each one recorded."""

from __future__ import annotations

from core.tags import PREVIOUS_CHAMPION
from workflows.context import Context


def move_alias_forward(ctx: Context, name: str, alias: str, version: int) -> bool:
    """Point `alias` at `version` unless it already points at that version or a newer one.

    An alias never moves backwards: when runs finish out of order, the newest passing version
    keeps the alias. Returns True when the alias moved. Call with the model's lock held.
    """
    current = ctx.registry.get_registered_model(name).aliases.get(alias)
    if current is not None and current >= version:
        return False
    ctx.registry.set_alias(name, alias, version)
    ctx.record(name, "alias", alias=alias, version=version, previous=current)
    return True


def promote(ctx: Context, name: str, champion_alias: str, version: int) -> int | None:
    """Move the champion alias to `version`, keeping the previous champion findable.

    The previous champion version is written to the new champion's `previous_champion` tag so
    `regpilot rollback` can restore it. Returns the previous champion version.
    """
    previous = ctx.registry.get_registered_model(name).aliases.get(champion_alias)
    if previous == version:
        return previous
    if previous is not None:
        ctx.registry.set_version_tags(name, version, {PREVIOUS_CHAMPION: str(previous)})
    ctx.registry.set_alias(name, champion_alias, version)
    ctx.record(name, "promotion", alias=champion_alias, version=version, previous=previous)
    return previous
