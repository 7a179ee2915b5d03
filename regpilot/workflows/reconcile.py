"""Reconciliation: find work no webhook brought (dropped deliveries, downtime) and queue it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from regpilot.core.tags import MODEL_NAME_RUN_TAG, VALIDATION_STATUS
from regpilot.workflows.context import Context


@dataclass(frozen=True)
class Finding:
    """A version with no verdict, or a finished run with a logged model and no verdict."""

    kind: str  # "version" or "run"
    name: str | None
    version: int | None
    run_id: str | None

    @property
    def delivery_id(self) -> str:
        """Return a stable id, so the same finding is queued once however often it is found."""
        if self.kind == "version":
            return f"version:{self.name}:{self.version}"
        return f"run:{self.run_id}"


def find_unjudged(ctx: Context, since_hours: float) -> list[Finding]:
    """Return what the registry holds that regpilot has not decided on, within the look-back.

    Runs are only picked up when they name their registered model (the `regpilot_model_name`
    tag or the policy's `name_mapping`): a sweep must not register every model anyone logs.
    """
    since_ms = int((time.time() - since_hours * 3600) * 1000)
    findings = [
        Finding("version", v.name, v.version, v.run_id)
        for v in ctx.registry.recent_versions(since_ms)
        if VALIDATION_STATUS not in v.tags
    ]
    for run in ctx.registry.unjudged_runs(since_ms):
        name = run.tags.get(MODEL_NAME_RUN_TAG) or ctx.policy.mapped_name(run.experiment_name)
        if name:
            findings.append(Finding("run", name, None, run.run_id))
    return findings


def reconcile(
    ctx: Context,
    since_hours: float,
    queue: Callable[[Finding], bool],
    *,
    dry_run: bool = False,
) -> tuple[list[Finding], int]:
    """Find unjudged work and queue each finding; return (findings, how many were queued)."""
    findings = find_unjudged(ctx, since_hours)
    queued = 0 if dry_run else sum(1 for finding in findings if queue(finding))
    return findings, queued
