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
from regpilot.evaluation.verdict import measured_promotes
from regpilot.workflows.aliases import move_alias_forward, promote
from regpilot.workflows.context import Context
from regpilot.workflows.evaluation import (
    Measurement,
    NoEvaluator,
    cache_for_version,
    judge_measured,
    measure_candidate,
    run_subject,
)
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
QUEUED = "QUEUED"


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
    # The evaluation on the policy's dataset (None without an `evaluation` block).
    measurement: Measurement | None = None
    # Handed to the evaluation queue: the verdict comes from the evaluation task.
    queued: bool = False

    @property
    def status(self) -> str:
        """Return PASSED, FAILED, SKIPPED (validation skipped on request) or QUEUED."""
        if self.queued:
            return QUEUED
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
            **({"evaluation": _evaluation_summary(self.measurement)} if self.measurement else {}),
        }


def _evaluation_summary(measurement: Measurement) -> dict[str, object]:
    result = measurement.result
    summary: dict[str, object] = {
        "evaluation_run_id": result.evaluation_run_id,
        "dataset_digest": result.dataset_digest,
        "measured": result.measured,
        "failure": result.failure,
        "timings": result.timings,
    }
    if measurement.champion is not None:
        summary["champion_version"] = measurement.champion.version
        summary["champion_measured"] = measurement.champion.result.measured
    return summary


def process_run_completed(
    ctx: Context,
    run_id: str,
    model_name: str | None,
    options: RegistrationOptions | None = None,
    *,
    model_uri: str | None = None,
) -> list[Outcome]:
    """Handle a run-completion notification end to end; safe to run twice.

    Per model: one snapshot read under its lock; the gate; registration (the version is created
    with its verdict tags); then the run's verdict tags; only then the alias moves, promotion
    and retention, so a move that fails never hides a verdict. The CLI's `register-model`
    comes through here too, with its `options`.

    A model whose policy has an `evaluation` block is measured first, outside the lock (it
    can take minutes): in this process when `ctx.evaluate` is set (the evaluation task, the
    CLI), else it is queued (`ctx.queue_evaluation`) and its outcome is QUEUED. `model_uri`
    picks one logged model of the run (the evaluation task names the one it measures).
    """
    options = options or RegistrationOptions()
    run = ctx.registry.get_run(run_id)
    require_settled(run)
    targets = _targets(ctx, run, model_name, model_uri)
    queued = [t for t in targets if _needs_evaluation(ctx, t, options) and ctx.evaluate is None]
    targets = [t for t in targets if t not in queued]
    for target in queued:
        if ctx.queue_evaluation is None:
            raise NoEvaluator(f"model {target.name!r} needs an evaluation; none can run here")
        ctx.queue_evaluation(target.name, run.run_id, target.model.uri, None)
    for target in targets:
        block = ctx.policy.for_model(target.name).evaluation
        if block is not None and not options.skip_validation:
            # Measured before the lock (kept in ctx.measured): the lock guards seconds of
            # registry writes, not minutes of model scoring.
            measure_candidate(
                ctx,
                target.name,
                block,
                [run_subject(run.run_id, target.model.uri)],
                target.model.uri,
                None,
            )
    with ExitStack() as locks:
        # Every model's lock for the whole event, in one order, so two events cannot deadlock.
        for name in sorted({t.name for t in targets}):
            locks.enter_context(ctx.lock(name))
        staged = [(t, *_judge_and_register(ctx, run, t, options)) for t in targets]
        _tag_run(ctx, run, [outcome for _, outcome, _ in staged])
        for target, outcome, snapshot in staged:
            if snapshot is not None:
                _advance(ctx, run, target, outcome, snapshot)
    waiting = [Outcome(t.name, run.run_id, Verdict(()), queued=True) for t in queued]
    return [outcome for _, outcome, _ in staged] + waiting


def _needs_evaluation(ctx: Context, target: Target, options: RegistrationOptions) -> bool:
    return not options.skip_validation and ctx.policy.for_model(target.name).evaluation is not None


def _targets(
    ctx: Context, run: RunInfo, model_name: str | None, model_uri: str | None
) -> list[Target]:
    # The evaluation task names the logged model it measured: exactly that one, by its name.
    if model_uri is None or model_name is None:
        return targets_for(ctx, run, model_name)
    for model in ctx.registry.logged_models(run):
        if model.uri == model_uri:
            return [Target(model, model_name)]
    return targets_for(ctx, run, model_name)


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
    tags = {
        VALIDATION_STATUS: PASSED if statuses == {PASSED} else FAILED,
        VALIDATION_REPORT: report,
        VALIDATION_SUMMARY: fit_line(summary),
    }
    measurement = judged[0].measurement if len(judged) == 1 else None
    if measurement is not None:
        # A candidate that fails without being registered keeps its evaluation run on its run.
        tags.update(measurement.tags())
    ctx.registry.set_run_tags(run.run_id, tags)


def _judge_and_register(
    ctx: Context, run: RunInfo, target: Target, options: RegistrationOptions
) -> tuple[Outcome, ModelSnapshot | None]:
    # Returns the outcome and, for a registered version, the snapshot to go on with.
    name = target.name
    if options.skip_validation:
        return _register_unvalidated(ctx, run, target, options)
    verdict, snapshot = judge(ctx, name, run, target.model)
    verdict, measurement, snapshot = judge_measured(
        ctx,
        name,
        run,
        target.model,
        verdict,
        snapshot,
        subjects=[run_subject(run.run_id, target.model.uri)],
        model_uri=target.model.uri,
    )
    ctx.record(
        name,
        "gate",
        identity=f"run:{run.run_id}:{target.model.uri}:{verdict.status}",
        run_id=run.run_id,
        verdict=verdict.status,
        checks=verdict.as_dict()["checks"],
        logged_metrics=sorted(outcome_metrics(run, target)),
        **({"evaluation": _evaluation_summary(measurement)} if measurement else {}),
    )
    outcome = Outcome(name, run.run_id, verdict, measurement=measurement)
    if not verdict.passed:
        return outcome, None
    version, created, snapshot = register_once(
        ctx,
        snapshot or read_snapshot(ctx, name),
        run,
        target.model,
        verdict,
        description=options.description,
        extra_tags={**options.tags, **(measurement.tags() if measurement else {})},
    )
    outcome.version, outcome.created = version.version, created
    if measurement is not None:
        cache_for_version(ctx, name, version.version, measurement)
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
            if champ_version != str(outcome.version) and _beats_champion(
                ctx, outcome, run, target, champ
            ):
                _, snapshot = promote(ctx, snapshot, policy.aliases.champion, outcome.version)
                outcome.aliases.append(policy.aliases.champion)
    outcome.pruned = list(enforce_retention(ctx, snapshot).applied)


def _beats_champion(
    ctx: Context,
    outcome: Outcome,
    run: RunInfo,
    target: Target,
    champ: Mapping[str, float] | None,
) -> bool:
    # `evaluation.champion` compares measured numbers on the same rows; else the logged ones.
    policy = ctx.policy.for_model(outcome.model_name)
    if policy.evaluation is not None and policy.measured_champion():
        if outcome.measurement is None:
            return False
        return measured_promotes(
            outcome.measurement.result,
            policy.evaluation.measured_rules(),
            outcome.measurement.champion,
        )
    rule = policy.champion_rule()
    return rule is not None and should_promote(outcome_metrics(run, target), champ, rule)


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
