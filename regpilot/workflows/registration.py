"""Register a model version with the seed's tags and metadata, at most once per run and model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from regpilot.core.gate import Verdict
from regpilot.core.registry_port import LoggedModel, ModelVersion, RunInfo
from regpilot.core.summary import validation_summary, version_description
from regpilot.core.tags import (
    FRAMEWORK,
    METADATA,
    REGISTERED_BY,
    REGISTERED_BY_US,
    REGISTRATION_DATE,
    SOURCE_RUN_ID,
    VALIDATION_REPORT,
    VALIDATION_SKIPPED,
    VALIDATION_STATUS,
    VALIDATION_SUMMARY,
    fit_json,
)
from regpilot.workflows.context import Context
from regpilot.workflows.snapshot import ModelSnapshot


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def metadata_tag(run: RunInfo, model: LoggedModel) -> str:
    """Return the `metadata` tag: training date, metrics, params and features, within limits."""
    metrics = {**run.metrics, **model.metrics}
    return fit_json(
        {
            "training_date": _iso(run.end_ms or run.start_ms),
            "metrics": {k: round(v, 6) for k, v in sorted(metrics.items())},
            "params": dict(sorted({**run.params, **model.params}.items())),
            "features": list(model.features),
        }
    )


def version_tags(
    run: RunInfo,
    model: LoggedModel,
    verdict: Verdict | None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return every tag a version regpilot registers carries."""
    tags = {
        SOURCE_RUN_ID: run.run_id,
        REGISTRATION_DATE: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        FRAMEWORK: model.flavor or "unknown",
        METADATA: metadata_tag(run, model),
        REGISTERED_BY: REGISTERED_BY_US,
    }
    if verdict is None:
        tags[VALIDATION_SKIPPED] = "true"
        tags[VALIDATION_STATUS] = "SKIPPED"
    else:
        tags[VALIDATION_STATUS] = verdict.status
        tags[VALIDATION_REPORT] = verdict.report()
        tags[VALIDATION_SUMMARY] = validation_summary(verdict, [*run.metrics, *model.metrics])
    tags.update(extra or {})
    return tags


def register_once(
    ctx: Context,
    snapshot: ModelSnapshot,
    run: RunInfo,
    model: LoggedModel,
    verdict: Verdict | None,
    *,
    description: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
) -> tuple[ModelVersion, bool, ModelSnapshot]:
    """Register `model` unless the snapshot holds a version from the same run and model.

    Returns the version, whether it was created now, and the snapshot with it. The version is
    created with its verdict tags in the same call, so it never exists without its verdict.
    Call with the model's lock held (the snapshot read under it), so two deliveries of the same
    event cannot both create a version.
    """
    name = snapshot.name
    for existing in snapshot.from_run(run.run_id):
        if existing.source == model.uri or existing.tags.get(SOURCE_RUN_ID) == run.run_id:
            _update_existing(ctx, existing, description, extra_tags)
            return existing, False, snapshot
    decision = ctx.decision_tags(
        "registration", run_id=run.run_id, verdict=verdict.status if verdict else "SKIPPED"
    )
    version = ctx.registry.create_version(
        name,
        model.uri,
        run.run_id,
        version_tags(run, model, verdict, {**(extra_tags or {}), **decision}),
        description if description else version_description(verdict, run.run_id),
    )
    ctx.record(
        name,
        "registration",
        identity=str(version.version),
        version=version.version,
        run_id=run.run_id,
        verdict=verdict.status if verdict else "SKIPPED",
    )
    return version, True, snapshot.with_version(version)


def _update_existing(
    ctx: Context,
    existing: ModelVersion,
    description: str | None,
    extra_tags: Mapping[str, str] | None,
) -> None:
    # Registering the same run again by hand with a new description or tags applies them, so
    # the command's result is the same whether or not the version already existed.
    if description is not None and description != (existing.description or ""):
        ctx.registry.set_version_description(existing.name, existing.version, description)
    changed = {k: v for k, v in (extra_tags or {}).items() if existing.tags.get(k) != v}
    if changed:
        ctx.registry.set_version_tags(existing.name, existing.version, changed)
