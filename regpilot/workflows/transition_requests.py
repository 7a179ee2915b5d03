"""Someone asked the workspace registry to move a version to Staging or Production: review it.

The version goes through the same gate as every other path; a pass approves the request and a
failure rejects it, each with a comment that gives the verdict and the failed checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from regpilot.core.databricks import REVIEWED_STAGES, TransitionPort, transition_comment
from regpilot.core.records import PlainRecord
from regpilot.core.registry_port import NotFound
from regpilot.workflows.context import Context
from regpilot.workflows.validation import judge, require_settled, subject_of_version


@dataclass
class TransitionOutcome(PlainRecord):
    """What a transition-request event led to (the task result)."""

    name: str
    version: int
    status: str  # approved | rejected | skipped
    verdict: str | None = None
    stages: list[str] = field(default_factory=list)
    detail: str = ""


def process_transition_request(
    ctx: Context, port: TransitionPort, name: str, version: int, stage: str | None
) -> TransitionOutcome:
    """Judge a version and answer its open request(s) to Staging/Production; safe to run twice.

    Without a stage in the event, the open requests are read from the registry. A request that
    is already gone (answered by a person, or by an earlier attempt of this task) is skipped.
    """
    stages = [stage] if stage else port.open_transition_stages(name, version)
    reviewed = [s for s in stages if s in REVIEWED_STAGES]
    if not reviewed:
        return TransitionOutcome(
            name, version, "skipped", detail="no open request to Staging or Production"
        )
    with ctx.lock(name):
        stored = ctx.registry.get_version(name, version)
        run, model = subject_of_version(ctx, stored)
        require_settled(run)
        verdict, _ = judge(ctx, name, run, model)
        action = "approve" if verdict.passed else "reject"
        answered: list[str] = []
        for target in reviewed:
            comment = transition_comment(verdict, target)
            try:
                if verdict.passed:
                    port.approve_transition(name, version, target, comment)
                else:
                    port.reject_transition(name, version, target, comment)
            except NotFound:
                continue
            answered.append(target)
            ctx.record(
                name,
                "transition_request",
                identity=f"{version}:{target}:{action}",
                version=version,
                run_id=stored.run_id,
                stage=target,
                verdict=verdict.status,
                action=action,
                checks=verdict.as_dict()["checks"],
            )
    if not answered:
        return TransitionOutcome(
            name, version, "skipped", verdict.status, detail="the request was already answered"
        )
    status = "approved" if verdict.passed else "rejected"
    return TransitionOutcome(name, version, status, verdict.status, answered)
