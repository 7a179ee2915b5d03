"""A training run finished: gate its model(s), register the passing ones, alias, retain."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.gate import Verdict, should_promote
from core.registry_port import RunInfo
from core.tags import FAILED, PASSED, VALIDATION_REPORT, VALIDATION_STATUS
from workflows.aliases import move_alias_forward, promote
from workflows.context import Context
from workflows.registration import register_once
from workflows.retention import enforce_retention
from workflows.validation import Target, champion_metrics, judge, targets_for


class RunNotFinished(Exception):
    """The run is still RUNNING: the notification came early, so try again later."""


@dataclass
class Outcome:
    """What happened to one logged model of a run."""

    model_name: str
    run_id: str
    verdict: Verdict
    version: int | None = None
    created: bool = False
    aliases: list[str] = field(default_factory=list)
    pruned: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Return the outcome as plain data (the task result)."""
        return {
            "model_name": self.model_name,
            "run_id": self.run_id,
            "status": self.verdict.status,
            "version": self.version,
            "created": self.created,
            "aliases": self.aliases,
            "pruned": self.pruned,
            "checks": self.verdict.as_dict()["checks"],
        }


def process_run_completed(ctx: Context, run_id: str, model_name: str | None) -> list[Outcome]:
    """Handle a run-completion notification end to end; safe to run twice."""
    run = ctx.registry.get_run(run_id)
    if run.status == "RUNNING" or run.status == "SCHEDULED":
        raise RunNotFinished(f"run {run_id} is {run.status}")
    outcomes = []
    for target in targets_for(ctx, run, model_name):
        outcomes.append(_process_target(ctx, run, target))
    statuses = {o.verdict.status for o in outcomes}
    report = outcomes[0].verdict.report() if len(outcomes) == 1 else "see model versions"
    ctx.registry.set_run_tags(
        run.run_id,
        {
            VALIDATION_STATUS: PASSED if statuses == {PASSED} else FAILED,
            VALIDATION_REPORT: report,
        },
    )
    return outcomes


def _process_target(ctx: Context, run: RunInfo, target: Target) -> Outcome:
    name = target.name
    policy = ctx.policy.for_model(name)
    with ctx.lock(name):
        verdict = judge(ctx, name, run, target.model)
        ctx.record(
            name,
            "gate",
            run_id=run.run_id,
            verdict=verdict.status,
            checks=verdict.as_dict()["checks"],
        )
        outcome = Outcome(name, run.run_id, verdict)
        if not verdict.passed:
            return outcome
        version, created = register_once(ctx, name, run, target.model, verdict)
        outcome.version, outcome.created = version.version, created
        if move_alias_forward(ctx, name, policy.aliases.challenger, version.version):
            outcome.aliases.append(policy.aliases.challenger)
        rule = policy.champion_rule()
        if policy.auto_promote and rule is not None:
            champ, champ_version = champion_metrics(ctx, name)
            if champ_version != str(version.version) and should_promote(
                outcome_metrics(run, target), champ, rule
            ):
                promote(ctx, name, policy.aliases.champion, version.version)
                outcome.aliases.append(policy.aliases.champion)
        outcome.pruned = list(enforce_retention(ctx, name).applied)
    return outcome


def outcome_metrics(run: RunInfo, target: Target) -> dict[str, float]:
    """Return the metrics the candidate was judged on."""
    return {**run.metrics, **target.model.metrics}
