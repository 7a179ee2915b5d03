"""Retention planning: which versions to keep, which to prune, and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from regpilot.core.tags import RETENTION_HOLD, RETENTION_STATUS

ARCHIVED_STAGE = "Archived"


class PruneAction(StrEnum):
    """What happens to a version past the retention window."""

    ARCHIVE = "archive"
    DELETE = "delete"


@dataclass(frozen=True)
class RetentionRules:
    """How many versions to keep and what protects a version."""

    keep: int = 10
    action: PruneAction = PruneAction.ARCHIVE
    protected_stages: frozenset[str] = frozenset({"Production", "Staging"})


@dataclass(frozen=True)
class VersionState:
    """What the planner needs to know of one model version."""

    version: int
    aliases: tuple[str, ...] = ()
    stage: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def archived(self) -> bool:
        """Tell whether a previous pass already archived this version."""
        return self.stage == ARCHIVED_STAGE or self.tags.get(RETENTION_STATUS) == "archived"


@dataclass(frozen=True)
class Entry:
    """One version's place in the plan."""

    version: int
    reason: str


@dataclass(frozen=True)
class RetentionPlan:
    """The outcome of planning: nothing here has been applied."""

    kept: tuple[Entry, ...]
    protected: tuple[Entry, ...]
    prune: tuple[Entry, ...]
    already_archived: tuple[Entry, ...]
    action: PruneAction

    @property
    def is_empty(self) -> bool:
        """Tell whether applying the plan would change nothing."""
        return not self.prune


def protection_reason(
    state: VersionState, rules: RetentionRules, extra: Mapping[int, str]
) -> str | None:
    """Return why a version must never be pruned, or None if nothing protects it."""
    if state.aliases:
        return "alias " + ",".join(sorted(state.aliases))
    if state.version in extra:
        return extra[state.version]
    if state.stage in rules.protected_stages:
        return f"stage {state.stage}"
    if state.tags.get(RETENTION_HOLD, "").lower() in {"true", "1", "yes"}:
        return f"tag {RETENTION_HOLD}"
    return None


def plan_retention(
    versions: Iterable[VersionState],
    rules: RetentionRules,
    extra_protected: Mapping[int, str] | None = None,
) -> RetentionPlan:
    """Plan a retention pass: keep the newest `keep` live versions, prune older unprotected ones.

    Newest means highest version number. A version is pruned only when at least `keep` live
    (not archived) versions are newer than it. Archived versions do not count towards `keep`;
    with the archive action they are left alone, with the delete action they are deleted unless
    protected. `extra_protected` maps versions to a reason (aliases read from the registered
    model, since Unity Catalog search results carry none).
    """
    extra = dict(extra_protected or {})
    ordered = sorted(versions, key=lambda s: s.version, reverse=True)
    kept: list[Entry] = []
    protected: list[Entry] = []
    prune: list[Entry] = []
    already: list[Entry] = []
    newer_live = 0  # live versions newer than the one being looked at
    for state in ordered:
        if not state.archived and newer_live < rules.keep:
            kept.append(Entry(state.version, f"newest {rules.keep}"))
            newer_live += 1
            continue
        reason = protection_reason(state, rules, extra)
        if reason is not None:
            protected.append(Entry(state.version, reason))
        elif newer_live < rules.keep:
            # An archived version inside the window: only versions with `keep` newer live
            # versions above them are ever pruned.
            already.append(Entry(state.version, "archived, within the newest window"))
        elif state.archived and rules.action is PruneAction.ARCHIVE:
            already.append(Entry(state.version, "already archived"))
        else:
            prune.append(Entry(state.version, f"older than the newest {rules.keep}"))
        if not state.archived:
            newer_live += 1
    return RetentionPlan(tuple(kept), tuple(protected), tuple(prune), tuple(already), rules.action)
