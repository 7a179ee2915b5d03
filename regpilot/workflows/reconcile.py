"""Reconciliation: find work no webhook brought (dropped deliveries, downtime) and queue it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from regpilot.core.tags import MODEL_NAME_RUN_TAG, VALIDATION_STATUS
from regpilot.workflows.context import Context

# A run delivery still "queued" this long after it was accepted has lost its task (a broker
# that lost its data, a worker that died where no redelivery reached): the sweep queues it
# again. Longer than a task's whole retry budget (5 retries, backoff under a minute, MLflow
# timeouts: a few minutes at the defaults), so work still retrying is not queued twice.
STALE_DELIVERY_SECONDS = 600


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


def stale_run_deliveries(
    events: Iterable[Mapping[str, Any]], now: float, stale_after: float = STALE_DELIVERY_SECONDS
) -> dict[str, str]:
    """Return run id -> model name of accepted run deliveries whose task never finished.

    Every accepted run delivery is in the event history with its run id, the model name its
    webhook gave and an outcome the worker overwrites; one still `queued` long after it was
    received names a run the sweep would otherwise not know how to register.
    """
    waiting: dict[str, str] = {}
    for event in events:
        run_id, model = event.get("run_id"), event.get("model")
        if not run_id or not model or event.get("outcome") != "queued":
            continue
        if now - float(event.get("received_at", now)) >= stale_after:
            waiting.setdefault(str(run_id), str(model))
    return waiting


def find_unjudged(ctx: Context, since_hours: float) -> list[Finding]:
    """Return what the registry holds that regpilot has not decided on, within the look-back.

    Runs are only picked up when they name their registered model (the `regpilot_model_name`
    tag, the policy's `name_mapping`, or the `model_name` of a run webhook whose task never
    finished): a sweep must not register every model anyone logs.
    """
    since_ms = int((time.time() - since_hours * 3600) * 1000)
    findings = [
        Finding("version", v.name, v.version, v.run_id)
        for v in ctx.registry.recent_versions(since_ms)
        if VALIDATION_STATUS not in v.tags
    ]
    lost = (
        stale_run_deliveries(ctx.store.events(ctx.settings.history_max_events), time.time())
        if ctx.store is not None
        else {}
    )
    for run in ctx.registry.unjudged_runs(since_ms):
        name = (
            run.tags.get(MODEL_NAME_RUN_TAG)
            or ctx.policy.mapped_name(run.experiment_name)
            or lost.get(run.run_id)
        )
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
