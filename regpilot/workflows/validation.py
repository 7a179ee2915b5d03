"""Read what the gate needs from the registry and evaluate it (one gate for every path)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from regpilot.core.gate import Candidate, Verdict, evaluate
from regpilot.core.naming import InvalidModelName
from regpilot.core.registry_port import LoggedModel, ModelVersion, NotFound, RunInfo, RunPhase
from regpilot.core.tags import MODEL_NAME_RUN_TAG
from regpilot.workflows.context import Context
from regpilot.workflows.snapshot import ModelSnapshot, read_snapshot


class NoModelName(Exception):
    """Neither the webhook, the run, the policy nor the logged model gives a model name."""


class NoLoggedModel(Exception):
    """The run logged no model, so there is nothing to validate or register."""


class RunNotFinished(Exception):
    """The run is still RUNNING or SCHEDULED: the notification came early, so try again later."""


@dataclass(frozen=True)
class Target:
    """One logged model of a run and the registered model it goes to."""

    model: LoggedModel
    name: str


def candidate_for(run: RunInfo, model: LoggedModel | None) -> Candidate:
    """Return the gate's view of a model: run metrics, overridden by the model's own."""
    metrics: dict[str, float] = dict(run.metrics)
    params: dict[str, str] = dict(run.params)
    if model is not None:
        metrics.update(model.metrics)
        params.update(model.params)
    return Candidate(
        metrics=metrics,
        params=params,
        tags=dict(run.tags),
        has_signature=model.has_signature if model is not None else None,
        run_status=run.status if run.run_id else None,
        model_status=model.status if model is not None else None,
        has_mlmodel=model.has_mlmodel if model is not None else None,
    )


def require_settled(run: RunInfo) -> None:
    """Raise RunNotFinished while the run may still change (core's `run_phase` decides)."""
    if run.phase is RunPhase.NOT_FINISHED:
        raise RunNotFinished(f"run {run.run_id} is {run.status}")


def targets_for(ctx: Context, run: RunInfo, explicit_name: str | None) -> list[Target]:
    """Return which logged models to register under which name.

    Name order: the webhook's `model_name`, the run tag `regpilot_model_name`, the policy's
    `name_mapping` for the run's experiment, then each logged model's own name. With a name from
    the first three and several logged models, the newest logged model is used.
    """
    models = list(ctx.registry.logged_models(run))
    if not models:
        raise NoLoggedModel(f"run {run.run_id} logged no model")
    name = explicit_name or run.tags.get(MODEL_NAME_RUN_TAG)
    if not name and ctx.policy.name_mapping:
        experiment_name = run.experiment_name or ctx.registry.experiment_name(run.experiment_id)
        name = ctx.policy.mapped_name(experiment_name)
    try:
        if name:
            newest = max(models, key=lambda m: m.creation_ms or 0)
            return [Target(newest, ctx.full_name(name))]
        return [Target(m, ctx.full_name(m.name)) for m in models]
    except InvalidModelName as exc:
        raise NoModelName(str(exc)) from exc


def champion_metrics(
    ctx: Context, snapshot: ModelSnapshot
) -> tuple[Mapping[str, float] | None, str | None]:
    """Return the current champion's metrics and version, or (None, None) when there is none."""
    version = snapshot.aliases.get(ctx.policy.for_model(snapshot.name).aliases.champion)
    if version is None:
        return None, None
    champion = snapshot.version(version)
    if champion is None:
        champion = ctx.registry.get_version(snapshot.name, version)
    if not champion.run_id:
        return {}, str(version)
    return dict(ctx.registry.get_run(champion.run_id).metrics), str(version)


def judge(
    ctx: Context, name: str, run: RunInfo, model: LoggedModel | None
) -> tuple[Verdict, ModelSnapshot | None]:
    """Evaluate a model against its registered model's policy.

    Returns the verdict and, when the policy compares with the champion, the snapshot read for
    it (else None), so a caller that goes on to register reads the model once.
    """
    policy = ctx.policy.for_model(name)
    rules = policy.gate_rules()
    if ctx.registry.capabilities.requires_signature and not rules.require_signature:
        # Unity Catalog refuses a model without a signature, whatever the policy says.
        rules = replace(rules, require_signature=True)
    champ, champ_version, snapshot = None, None, None
    if rules.champion is not None:
        snapshot = read_snapshot(ctx, name)
        champ, champ_version = champion_metrics(ctx, snapshot)
    verdict = evaluate(
        candidate_for(run, model), rules, champion_metrics=champ, champion_version=champ_version
    )
    return verdict, snapshot


def subject_of_version(ctx: Context, stored: ModelVersion) -> tuple[RunInfo, LoggedModel | None]:
    """Return the run and logged model behind a registered version, as the gate judges them.

    A version whose run is gone gets an empty run, so the gate reports every required metric
    as missing instead of failing.
    """
    run = RunInfo(stored.run_id or "", "", None, "UNKNOWN", None, None, {}, {}, {})
    if stored.run_id:
        try:
            run = ctx.registry.get_run(stored.run_id)
        except NotFound:
            pass
    return run, _model_of(ctx, run, stored.source)


def _model_of(ctx: Context, run: RunInfo, source: str | None) -> LoggedModel | None:
    if not run.run_id:
        return None
    try:
        models = ctx.registry.logged_models(run)
    except NotFound:
        return None
    for model in models:
        if source and (source == model.uri or (model.model_id and model.model_id in source)):
            return model
    return models[0] if models else None
