"""A version was registered outside regpilot: validate it with the same gate, tag, alias."""

from __future__ import annotations

from dataclasses import dataclass

from regpilot.core.records import PlainRecord
from regpilot.core.summary import validation_summary
from regpilot.core.tags import (
    FRAMEWORK,
    PASSED,
    REGISTERED_BY,
    REGISTERED_BY_US,
    SOURCE_RUN_ID,
    VALIDATION_REPORT,
    VALIDATION_STATUS,
    VALIDATION_SUMMARY,
)
from regpilot.workflows.aliases import move_alias_forward
from regpilot.workflows.context import Context
from regpilot.workflows.evaluation import (
    NoEvaluator,
    cache_for_version,
    judge_measured,
    measure_candidate,
    version_subject,
)
from regpilot.workflows.retention import enforce_retention
from regpilot.workflows.snapshot import ModelSnapshot, read_snapshot
from regpilot.workflows.validation import judge, require_settled, subject_of_version


@dataclass(frozen=True)
class VersionOutcome(PlainRecord):
    """What happened to a version registered by someone else."""

    name: str
    version: int
    status: str
    detail: str = ""


def process_version_created(ctx: Context, name: str, version: int) -> VersionOutcome:
    """Validate a version that appeared in the registry; skip one already validated.

    The verdict tags are written first, then the alias moves and retention: a move that fails
    never hides a verdict. A redelivery of a version that already PASSED (and that regpilot did
    not register itself; the run path moves those) finishes the moves, which are idempotent.

    With an `evaluation` block the version is measured first, outside the lock, in this
    process when `ctx.evaluate` is set, else the evaluation is queued (outcome `queued`).
    """
    block = ctx.policy.for_model(name).evaluation
    if block is not None:
        stored = ctx.registry.get_version(name, version)
        if VALIDATION_STATUS not in stored.tags:
            if ctx.evaluate is None:
                if ctx.queue_evaluation is None:
                    raise NoEvaluator(f"model {name!r} needs an evaluation; none can run here")
                ctx.queue_evaluation(name, None, None, version)
                return VersionOutcome(name, version, "queued", "evaluation queued")
            measure_candidate(
                ctx, name, block, [version_subject(version)], _uri(name, version), None, version
            )
    with ctx.lock(name):
        stored = ctx.registry.get_version(name, version)
        recorded = stored.tags.get(VALIDATION_STATUS)
        if recorded is not None:
            if recorded == PASSED and stored.tags.get(REGISTERED_BY) != REGISTERED_BY_US:
                _advance(ctx, read_snapshot(ctx, name), version)
            return VersionOutcome(name, version, "skipped", "already validated")
        run, model = subject_of_version(ctx, stored)
        require_settled(run)
        verdict, snapshot = judge(ctx, name, run, model)
        verdict, measurement, snapshot = judge_measured(
            ctx,
            name,
            run,
            model,
            verdict,
            snapshot,
            subjects=[version_subject(version)],
            model_uri=_uri(name, version),
            own_version=version,
        )
        logged = [*run.metrics, *(model.metrics if model is not None else {})]
        tags = {
            VALIDATION_REPORT: verdict.report(),
            VALIDATION_SUMMARY: validation_summary(verdict, logged),
        }
        if measurement is not None:
            tags.update(measurement.tags())
            cache_for_version(ctx, name, version, measurement)
        if stored.run_id and SOURCE_RUN_ID not in stored.tags:
            tags[SOURCE_RUN_ID] = stored.run_id
        if model is not None and model.flavor and FRAMEWORK not in stored.tags:
            tags[FRAMEWORK] = model.flavor
        tags[VALIDATION_STATUS] = verdict.status
        ctx.registry.set_version_tags(name, version, tags)
        ctx.record(
            name,
            "gate",
            identity=f"version:{version}:{verdict.status}",
            version=version,
            run_id=stored.run_id,
            verdict=verdict.status,
            checks=verdict.as_dict()["checks"],
            logged_metrics=sorted(set(logged)),
            **({"evaluation": measurement.result.as_dict()} if measurement else {}),
        )
        if verdict.passed:
            _advance(ctx, snapshot or read_snapshot(ctx, name), version)
        return VersionOutcome(name, version, verdict.status)


def _advance(ctx: Context, snapshot: ModelSnapshot, version: int) -> None:
    # A passing version becomes the challenger (forward only), then retention runs.
    alias = ctx.policy.for_model(snapshot.name).aliases.challenger
    _, snapshot = move_alias_forward(ctx, snapshot, alias, version)
    enforce_retention(ctx, snapshot)


def _uri(name: str, version: int) -> str:
    # Scored through the registry, exactly as a consumer of the version would load it.
    return f"models:/{name}/{version}"
