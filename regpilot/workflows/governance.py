"""What the registry commands read and decide besides the core loop: details, compare, stages,
backtest. Shared by the CLI; the gate and the alias moves are the core loop's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from regpilot.core.compare import MetricDelta, compare_metrics, directions_of
from regpilot.core.gate import Direction, Verdict, evaluate
from regpilot.core.registry_port import ModelVersion, NotFound, RegisteredModel, Unsupported
from regpilot.core.tags import EVALUATION_RUN_ID, VALIDATION_STATUS
from regpilot.evaluation.decide import default_direction
from regpilot.evaluation.spec import EvaluationResult
from regpilot.evaluation.verdict import measured_gate
from regpilot.workflows.context import Context
from regpilot.workflows.refusals import Refused
from regpilot.workflows.snapshot import read_snapshot
from regpilot.workflows.validation import candidate_for, champion_metrics, subject_of_version

STAGES = ("None", "Staging", "Production", "Archived")


def require_model(ctx: Context, name: str) -> RegisteredModel:
    """Return the registered model, or raise NotFound naming it."""
    try:
        return ctx.registry.get_registered_model(name)
    except NotFound as exc:
        raise NotFound(f"registered model {name!r} not found") from exc


def require_version(ctx: Context, name: str, version: int) -> ModelVersion:
    """Return one version of a model that exists, or raise NotFound naming what is missing."""
    registered = require_model(ctx, name)
    try:
        found = ctx.registry.get_version(name, version)
    except NotFound as exc:
        raise NotFound(f"model {name!r} has no version {version}") from exc
    return _with_aliases(found, registered)


def latest_version(ctx: Context, name: str) -> ModelVersion:
    """Return the model's latest version: the highest version number, whatever its stage."""
    registered = require_model(ctx, name)
    newest = max((v.version for v in ctx.registry.iter_versions(name)), default=None)
    if newest is None:
        raise Refused(f"model {name!r} has no versions")
    return _with_aliases(ctx.registry.get_version(name, newest), registered)


def _with_aliases(version: ModelVersion, registered: RegisteredModel) -> ModelVersion:
    # Unity Catalog may leave a version's own alias list empty; the model's alias map is whole.
    mapped = {alias for alias, number in registered.aliases.items() if number == version.version}
    aliases = tuple(sorted(mapped | set(version.aliases)))
    return dataclasses.replace(version, aliases=aliases)


@dataclass(frozen=True)
class Comparison:
    """Two versions of one model side by side."""

    name: str
    old: ModelVersion
    new: ModelVersion
    metrics: tuple[MetricDelta, ...]


def metrics_of(ctx: Context, version: ModelVersion) -> dict[str, float]:
    """Return the metrics the gate sees for a version: its run's, overridden by its model's."""
    run, model = subject_of_version(ctx, version)
    return dict(candidate_for(run, model).metrics)


def measured_metrics_of(ctx: Context, version: ModelVersion) -> dict[str, float]:
    """Return what the version's evaluation run measured ({} when it was never measured)."""
    run_id = version.tags.get(EVALUATION_RUN_ID)
    if not run_id:
        return {}
    try:
        return dict(ctx.registry.get_run(run_id).metrics)
    except NotFound:
        return {}


def compare_versions(ctx: Context, name: str, old: int, new: int) -> Comparison:
    """Compare every metric of two versions, direction-aware where the policy says.

    Measured numbers (from each version's evaluation run) come as `measured:<metric>` rows.
    """
    before = require_version(ctx, name, old)
    after = require_version(ctx, name, new)
    directions = directions_of(ctx.policy.for_model(name).gate_rules())
    old_metrics, new_metrics = metrics_of(ctx, before), metrics_of(ctx, after)
    for version, metrics in ((before, old_metrics), (after, new_metrics)):
        for metric, value in measured_metrics_of(ctx, version).items():
            metrics[f"measured:{metric}"] = value
            directions[f"measured:{metric}"] = (
                Direction.MAX if default_direction(metric) == "lower" else Direction.MIN
            )
    rows = compare_metrics(old_metrics, new_metrics, directions)
    return Comparison(name, before, after, rows)


def transition(
    ctx: Context, name: str, version: int, stage: str, *, archive_existing: bool
) -> tuple[ModelVersion, ModelVersion]:
    """Move a version to a legacy stage; return (before, after). Hold the model's lock.

    Unity Catalog has no stages: that is refused before any registry call.
    """
    if not ctx.registry.capabilities.supports_stages:
        raise Unsupported(
            "this registry (Unity Catalog) has no stages: use aliases instead, e.g. "
            f"`regpilot alias set {name} champion {version}`"
        )
    before = require_version(ctx, name, version)
    after = ctx.registry.transition_stage(name, version, stage, archive_existing)
    ctx.registry.set_version_tags(
        name,
        version,
        ctx.decision_tags(
            "stage", stage=stage, previous=before.stage, archive_existing=archive_existing
        ),
    )
    ctx.record(
        name,
        "stage",
        version=version,
        stage=stage,
        previous=before.stage,
        archive_existing=archive_existing,
    )
    return before, after


@dataclass(frozen=True)
class BacktestRow:
    """What the current policy says of one existing version."""

    version: int
    aliases: tuple[str, ...]
    recorded: str | None  # the validation_status the version carries, if any
    verdict: Verdict
    note: str = ""


def backtest(
    ctx: Context, name: str, progress: Callable[[int, int], None] | None = None
) -> list[BacktestRow]:
    """Judge every version of a model under the current policy, newest first; change nothing.

    The champion comparison is made against today's champion; the champion itself is not
    compared with itself.
    """
    registered = require_model(ctx, name)
    rules = ctx.policy.for_model(name).gate_rules()
    champ, champ_version = (None, None)
    if rules.champion is not None:
        champ, champ_version = champion_metrics(ctx, read_snapshot(ctx, name))
    versions = sorted(ctx.registry.iter_versions(name), key=lambda v: v.version, reverse=True)
    rows = []
    for index, listed in enumerate(versions, start=1):
        version = _with_aliases(listed, registered)
        run, model = subject_of_version(ctx, version)
        own_rules, note = rules, ""
        if rules.champion is not None and str(version.version) == champ_version:
            own_rules, note = dataclasses.replace(rules, champion=None), "the champion itself"
        verdict = evaluate(
            candidate_for(run, model),
            own_rules,
            champion_metrics=champ,
            champion_version=champ_version,
        )
        block = ctx.policy.for_model(name).evaluation
        if block is not None:
            # Measured numbers where they exist (the version's evaluation run); a backtest
            # never loads a model, so a version never measured says so.
            measured = measured_metrics_of(ctx, version)
            if measured:
                recorded = EvaluationResult(
                    "",
                    True,
                    None,
                    measured,
                    [],
                    version.tags.get(EVALUATION_RUN_ID),
                    None,
                    {},
                    None,
                )
                rules_now = dataclasses.replace(block.measured_rules(), champion_metric=None)
                logged = dict(candidate_for(run, model).metrics)
                checks = measured_gate(recorded, rules_now, logged)
                verdict = Verdict((*verdict.checks, *checks))
            else:
                note = (note + "; " if note else "") + "never measured on the golden dataset"
        rows.append(
            BacktestRow(
                version.version, version.aliases, version.tags.get(VALIDATION_STATUS), verdict, note
            )
        )
        if progress is not None:
            progress(index, len(versions))
    return rows
