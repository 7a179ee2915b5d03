"""A training run finished: gate its model(s), register the passing ones, alias, retain."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field

from regpilot.core.gate import Verdict, should_promote
from regpilot.core.registry_port import RunInfo
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
from regpilot.workflows.snapshot import ModelSnapshot, read_snapshot
from regpilot.workflows.validation import RunNotFinished as RunNotFinished  # tasks import it
from regpilot.workflows.validation import (
    Target,
    champion_metrics,
    judge,
    require_settled,
    targets_for,
)

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

    Per model: one snapshot read under its lock; the gate; registration (the version is created
    with its verdict tags); then the run's verdict tags; only then the alias moves, promotion
    and retention, so a move that fails never hides a verdict. The CLI's `register-model`
    comes through here too, with its `options`.
    """
    options = options or RegistrationOptions()
    run = ctx.registry.get_run(run_id)
    require_settled(run)
    targets = targets_for(ctx, run, model_name)
    with ExitStack() as locks:
        # Every model's lock for the whole event, in one order, so two events cannot deadlock.
        for name in sorted({t.name for t in targets}):
            locks.enter_context(ctx.lock(name))
        staged = [(t, *_judge_and_register(ctx, run, t, options)) for t in targets]
        _tag_run(ctx, run, [outcome for _, outcome, _ in staged])
        for target, outcome, snapshot in staged:
            if snapshot is not None:
                _advance(ctx, run, target, outcome, snapshot)
    return [outcome for _, outcome, _ in staged]


def _tag_run(ctx: Context, run: RunInfo, outcomes: list[Outcome]) -> None:
    judged = [o for o in outcomes if not o.skipped]
    if not judged:
        return  # a skipped validation says nothing about the run
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


def _judge_and_register(
    ctx: Context, run: RunInfo, target: Target, options: RegistrationOptions
) -> tuple[Outcome, ModelSnapshot | None]:
    # Returns the outcome and, for a registered version, the snapshot to go on with.
    name = target.name
    if options.skip_validation:
        return _register_unvalidated(ctx, run, target, options)
    verdict, snapshot = judge(ctx, name, run, target.model)
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
        return outcome, None
    version, created, snapshot = register_once(
        ctx,
        snapshot or read_snapshot(ctx, name),
        run,
        target.model,
        verdict,
        description=options.description,
        extra_tags=options.tags,
    )
    outcome.version, outcome.created = version.version, created
    return outcome, snapshot


def _advance(
    ctx: Context, run: RunInfo, target: Target, outcome: Outcome, snapshot: ModelSnapshot
) -> None:
    # After the verdicts are written: challenger, champion, retention (a skipped validation
    # gets no alias: `challenger` means "passed its gate").
    assert outcome.version is not None
    policy = ctx.policy.for_model(outcome.model_name)
    if not outcome.skipped:
        moved, snapshot = move_alias_forward(
            ctx, snapshot, policy.aliases.challenger, outcome.version
        )
        if moved:
            outcome.aliases.append(policy.aliases.challenger)
        version = snapshot.version(outcome.version)
        rule = policy.champion_rule()
        # A version someone rolled back stays demoted, even when its event is redelivered.
        rolled_back = version is not None and version.tags.get(ROLLED_BACK) == "true"
        if policy.auto_promote and rule is not None and not rolled_back:
            champ, champ_version = champion_metrics(ctx, snapshot)
            if champ_version != str(outcome.version) and should_promote(
                outcome_metrics(run, target), champ, rule
            ):
                _, snapshot = promote(ctx, snapshot, policy.aliases.champion, outcome.version)
                outcome.aliases.append(policy.aliases.champion)
    outcome.pruned = list(enforce_retention(ctx, snapshot).applied)


def _register_unvalidated(
    ctx: Context, run: RunInfo, target: Target, options: RegistrationOptions
) -> tuple[Outcome, ModelSnapshot]:
    # Skipped on request: registered and tagged validation_skipped, but no `challenger`
    # and no promotion. Call with the lock held.
    name = target.name
    ctx.record(name, "gate", run_id=run.run_id, verdict=SKIPPED, checks=[])
    version, created, snapshot = register_once(
        ctx,
        read_snapshot(ctx, name),
        run,
        target.model,
        None,
        description=options.description,
        extra_tags=options.tags,
    )
    outcome = Outcome(name, run.run_id, Verdict(()), version.version, created, skipped=True)
    return outcome, snapshot


def outcome_metrics(run: RunInfo, target: Target) -> dict[str, float]:
    """Return the metrics the candidate was judged on."""
    return {**run.metrics, **target.model.metrics}
