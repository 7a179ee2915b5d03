"""A version was registered outside regpilot: validate it with the same gate, tag, alias."""

from __future__ import annotations

from dataclasses import dataclass

from regpilot.core.summary import validation_summary
from regpilot.core.tags import (
    FRAMEWORK,
    SOURCE_RUN_ID,
    VALIDATION_REPORT,
    VALIDATION_STATUS,
    VALIDATION_SUMMARY,
)
from regpilot.workflows.aliases import move_alias_forward
from regpilot.workflows.context import Context
from regpilot.workflows.retention import enforce_retention
from regpilot.workflows.validation import judge, subject_of_version


@dataclass(frozen=True)
class VersionOutcome:
    """What happened to a version registered by someone else."""

    name: str
    version: int
    status: str
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        """Return the outcome as plain data (the task result)."""
        return dict(vars(self))


def process_version_created(ctx: Context, name: str, version: int) -> VersionOutcome:
    """Validate a version that appeared in the registry; skip one already validated."""
    with ctx.lock(name):
        stored = ctx.registry.get_version(name, version)
        if VALIDATION_STATUS in stored.tags:
            return VersionOutcome(name, version, "skipped", "already validated")
        run, model = subject_of_version(ctx, stored)
        verdict = judge(ctx, name, run, model)
        logged = [*run.metrics, *(model.metrics if model is not None else {})]
        tags = {
            VALIDATION_REPORT: verdict.report(),
            VALIDATION_SUMMARY: validation_summary(verdict, logged),
        }
        if stored.run_id and SOURCE_RUN_ID not in stored.tags:
            tags[SOURCE_RUN_ID] = stored.run_id
        if model is not None and model.flavor and FRAMEWORK not in stored.tags:
            tags[FRAMEWORK] = model.flavor
        tags[VALIDATION_STATUS] = verdict.status  # written last: it marks the work done
        ctx.record(
            name,
            "gate",
            identity=f"version:{version}:{verdict.status}",
            version=version,
            run_id=stored.run_id,
            verdict=verdict.status,
            checks=verdict.as_dict()["checks"],
            logged_metrics=sorted(set(logged)),
        )
        if verdict.passed:
            policy = ctx.policy.for_model(name)
            move_alias_forward(ctx, name, policy.aliases.challenger, version)
            enforce_retention(ctx, name)
        # The validation tags go last: they mark the work done, so a task that dies before
        # this point is redone in full on redelivery.
        ctx.registry.set_version_tags(name, version, tags)
        return VersionOutcome(name, version, verdict.status)
