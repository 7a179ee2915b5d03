"""A training run finished: gate its model(s), register the passing ones, alias, retain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from regpilot.core.gate import Verdict, should_promote
from regpilot.core.registry_port import ModelVersion, NotFound, RunInfo
from regpilot.core.summary import fit_line, validation_summary
from regpilot.core.tags import (
    FAILED,
    PASSED,
    ROLLED_BACK,
    VALIDATION_REPORT,
    VALIDATION_STATUS,
    VALIDATION_SUMMARY,
)
from regpilot.workflows.aliases import move_alias_forward, promote
from regpilot.workflows.context import Context
from regpilot.workflows.registration import register_once
from regpilot.workflows.retention import enforce_retention
from regpilot.workflows.validation import Target, champion_metrics, judge, targets_for


class RunNotFinished(Exception):
    """The run is still RUNNING: the notification came early, so try again later."""


SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class RegistrationOptions:
    """What a person may add when registering by hand (`regpilot register-model`)."""

    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    skip_validation: bool = False


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
    skipped: bool = False

    @property
    def status(self) -> str:
        """Return PASSED, FAILED, or SKIPPED when validation was skipped on request."""
        return SKIPPED if self.skipped else self.verdict.status

    def as_dict(self) -> dict[str, object]:
        """Return the outcome as plain data (the task result)."""
        return {
            "model_name": self.model_name,
            "run_id": self.run_id,
            "status": self.status,
            "version": self.version,
            "created": self.created,
            "aliases": self.aliases,
            "pruned": self.pruned,
            "checks": self.verdict.as_dict()["checks"],
        }


def process_run_completed(
    ctx: Context,
    run_id: str,
    model_name: str | None,
    options: RegistrationOptions | None = None,
) -> list[Outcome]:
    """Handle a run-completion notification end to end; safe to run twice.

    The CLI's `register-model` comes through here too, with its `options`.
    """
    options = options or RegistrationOptions()
    run = ctx.registry.get_run(run_id)
    if run.status == "RUNNING" or run.status == "SCHEDULED":
        raise RunNotFinished(f"run {run_id} is {run.status}")
    outcomes = []
    for target in targets_for(ctx, run, model_name):
        outcomes.append(_process_target(ctx, run, target, options))
    judged = [o for o in outcomes if not o.skipped]
    if not judged:
        return outcomes  # a skipped validation says nothing about the run
    statuses = {o.verdict.status for o in judged}
    report = judged[0].verdict.report() if len(judged) == 1 else "see model versions"
    summary = "; ".join(
        (f"{o.model_name}: " if len(judged) > 1 else "")
        + validation_summary(o.verdict, run.metrics)
        for o in judged
    )
    ctx.registry.set_run_tags(
        run.run_id,
        {
            VALIDATION_STATUS: PASSED if statuses == {PASSED} else FAILED,
            VALIDATION_REPORT: report,
            VALIDATION_SUMMARY: fit_line(summary),
        },
    )
    return outcomes


def _process_target(
    ctx: Context, run: RunInfo, target: Target, options: RegistrationOptions
) -> Outcome:
    name = target.name
    policy = ctx.policy.for_model(name)
    with ctx.lock(name):
        if options.skip_validation:
            return _register_unvalidated(ctx, run, target, options)
        verdict = judge(ctx, name, run, target.model)
        ctx.record(
            name,
            "gate",
            identity=f"run:{run.run_id}:{target.model.uri}:{verdict.status}",
            run_id=run.run_id,
            verdict=verdict.status,
            checks=verdict.as_dict()["checks"],
            logged_metrics=sorted(outcome_metrics(run, target)),
        )
        outcome = Outcome(name, run.run_id, verdict)
        if not verdict.passed:
            return outcome
        # Under the lock, one read of the versions and one of the aliases serve the
        # registration check, the alias move and the retention pass (REST calls per event).
        versions: list[ModelVersion] | None = _versions_of(ctx, name)
        version, created = register_once(
            ctx,
            name,
            run,
            target.model,
            verdict,
            description=options.description,
            extra_tags=options.tags,
            versions=versions,
        )
        outcome.version, outcome.created = version.version, created
        if created and versions is not None:
            versions.append(version)
        aliases: dict[str, int] | None = dict(ctx.registry.get_registered_model(name).aliases)
        if move_alias_forward(ctx, name, policy.aliases.challenger, version.version, aliases):
            outcome.aliases.append(policy.aliases.challenger)
            aliases = {**(aliases or {}), policy.aliases.challenger: version.version}
        rule = policy.champion_rule()
        # A version someone rolled back stays demoted, even when its event is redelivered.
        if policy.auto_promote and rule is not None and version.tags.get(ROLLED_BACK) != "true":
            champ, champ_version = champion_metrics(ctx, name)
            if champ_version != str(version.version) and should_promote(
                outcome_metrics(run, target), champ, rule
            ):
                promote(ctx, name, policy.aliases.champion, version.version)
                outcome.aliases.append(policy.aliases.champion)
                versions, aliases = None, None  # promotion rewrote both: retention rereads
        outcome.pruned = list(
            enforce_retention(ctx, name, versions=versions, aliases=aliases).applied
        )
    return outcome


def _versions_of(ctx: Context, name: str) -> list[ModelVersion]:
    try:
        return list(ctx.registry.iter_versions(name))
    except NotFound:
        return []  # no such model yet: the registration creates it


def _register_unvalidated(
    ctx: Context, run: RunInfo, target: Target, options: RegistrationOptions
) -> Outcome:
    # Skipped on request: registered and tagged validation_skipped, but no `challenger`
    # (that alias means "passed its gate") and no promotion. Call with the lock held.
    name = target.name
    ctx.record(name, "gate", run_id=run.run_id, verdict=SKIPPED, checks=[])
    version, created = register_once(
        ctx,
        name,
        run,
        target.model,
        None,
        description=options.description,
        extra_tags=options.tags,
    )
    outcome = Outcome(name, run.run_id, Verdict(()), version.version, created, skipped=True)
    outcome.pruned = list(enforce_retention(ctx, name).applied)
    return outcome


def outcome_metrics(run: RunInfo, target: Target) -> dict[str, float]:
    """Return the metrics the candidate was judged on."""
    return {**run.metrics, **target.model.metrics}
