"""One read of a registered model per event: its versions and who holds which alias.

A workflow reads the snapshot once, under the model's lock, and passes it down; each step that
changes the registry returns the snapshot as it now stands, so no step reads the model again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from config.policy import AliasPolicy
from regpilot.core.registry_port import (
    ModelVersion,
    NotFound,
    RegisteredModel,
    RegistryCapabilities,
)
from regpilot.workflows.context import Context


@dataclass(frozen=True)
class ModelSnapshot:
    """A registered model as one event saw it.

    `aliases` maps alias -> version as this registry holds them: the registered model's aliases,
    or, where the registry has no aliases, the newest version in the stage the policy maps each
    alias to. `pages_read`: version pages the read took (retention reports it).
    """

    name: str
    registered: RegisteredModel | None
    versions: tuple[ModelVersion, ...] = ()
    aliases: Mapping[str, int] = field(default_factory=dict)
    pages_read: int = 0

    def version(self, number: int) -> ModelVersion | None:
        """Return one version, or None when the snapshot has no such version."""
        return next((v for v in self.versions if v.version == number), None)

    def from_run(self, run_id: str) -> tuple[ModelVersion, ...]:
        """Return the versions created from `run_id`."""
        return tuple(v for v in self.versions if v.run_id == run_id)

    def with_version(self, version: ModelVersion) -> ModelSnapshot:
        """Return the snapshot with `version` added, or replacing the one of the same number."""
        others = tuple(v for v in self.versions if v.version != version.version)
        return dataclasses.replace(self, versions=(*others, version))

    def with_alias(self, alias: str, version: int) -> ModelSnapshot:
        """Return the snapshot with `alias` pointing at `version`."""
        return dataclasses.replace(self, aliases={**self.aliases, alias: version})

    def with_stage(self, version: int, stage: str, archive_existing: bool) -> ModelSnapshot:
        """Return the snapshot after a stage move (archiving the stage's others if asked)."""
        moved = []
        for v in self.versions:
            if v.version == version:
                v = dataclasses.replace(v, stage=stage)
            elif archive_existing and v.stage == stage:
                v = dataclasses.replace(v, stage="Archived")
            moved.append(v)
        return dataclasses.replace(self, versions=tuple(moved))


def stage_aliases(versions: tuple[ModelVersion, ...], aliases: AliasPolicy) -> dict[str, int]:
    """Return who holds each alias on a registry without aliases: the newest in its stage."""
    held: dict[str, int] = {}
    for alias in (aliases.challenger, aliases.champion):
        stage = aliases.stage_for(alias)
        in_stage = [v.version for v in versions if stage is not None and v.stage == stage]
        if in_stage:
            held[alias] = max(in_stage)
    return held


def alias_map(
    capabilities: RegistryCapabilities,
    registered: RegisteredModel | None,
    versions: tuple[ModelVersion, ...],
    aliases: AliasPolicy,
) -> dict[str, int]:
    """Return alias -> version as the registry holds them (see ModelSnapshot.aliases)."""
    if capabilities.supports_aliases:
        return dict(registered.aliases) if registered is not None else {}
    if capabilities.supports_stages:
        return stage_aliases(versions, aliases)
    return {}


def read_snapshot(ctx: Context, name: str) -> ModelSnapshot:
    """Read a model's versions and registered model once (two calls; one for a new model)."""
    try:
        versions = tuple(ctx.registry.iter_versions(name))
    except NotFound:
        versions = ()
    pages = ctx.registry.pages_read
    registered: RegisteredModel | None = None
    if versions:
        # A model with no versions has no alias to read: the first event of a model skips it.
        try:
            registered = ctx.registry.get_registered_model(name)
        except NotFound:
            registered = None
    held = alias_map(
        ctx.registry.capabilities, registered, versions, ctx.policy.for_model(name).aliases
    )
    return ModelSnapshot(name, registered, versions, held, pages)
