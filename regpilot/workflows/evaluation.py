"""Measure a candidate (and the champion, on the same rows) for the measured gate.

An evaluation is cached in Redis under (model, subject, dataset digest), where the subject is
the candidate's logged model (`run:<run id>:<model uri>`) and, once registered, its version
(`v<n>`). So a redelivered evaluation reuses its result, and the champion is measured at most
once per digest, including the evaluation it got when it was itself a candidate.

The digest is only known once the dataset is read; to look the cache up *before* evaluating,
the digest last measured for the same dataset key (URI, targets, row cap and, for a local file,
its size and modification time) is remembered.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

from config.policy import EvaluationPolicy
from regpilot.core.gate import Verdict
from regpilot.core.registry_port import LoggedModel, RunInfo
from regpilot.core.tags import EVALUATION_DATASET_DIGEST, EVALUATION_RUN_ID
from regpilot.evaluation.dataset import is_remote, local_path
from regpilot.evaluation.spec import EvaluationResult, EvaluationSpec
from regpilot.evaluation.verdict import ChampionMeasurement, measured_gate
from regpilot.workflows.context import Context
from regpilot.workflows.snapshot import ModelSnapshot, read_snapshot

log = logging.getLogger("regpilot.workflows")


class NoEvaluator(RuntimeError):
    """A model's policy asks for an evaluation but this process can neither run nor queue one."""


@dataclass(frozen=True)
class Measurement:
    """A candidate's evaluation and the champion's on the same rows (None: no comparison)."""

    result: EvaluationResult
    champion: ChampionMeasurement | None

    def tags(self) -> dict[str, str]:
        """Return the `evaluation_run_id` / `evaluation_dataset_digest` tags for the verdict."""
        tags: dict[str, str] = {}
        if self.result.evaluation_run_id:
            tags[EVALUATION_RUN_ID] = self.result.evaluation_run_id
        if self.result.dataset_digest:
            tags[EVALUATION_DATASET_DIGEST] = self.result.dataset_digest
        return tags


def run_subject(run_id: str, model_uri: str) -> str:
    """Return the cache subject of a run's logged model."""
    return f"run:{run_id}:{model_uri}"


def version_subject(version: int | str) -> str:
    """Return the cache subject of a registered version."""
    return f"v{version}"


def dataset_key(spec: EvaluationSpec) -> str:
    """Return a key that changes when the rows the spec reads may have changed."""
    parts = [spec.dataset, spec.targets, str(spec.max_rows)]
    if not is_remote(spec.dataset):
        try:
            stat = os.stat(local_path(spec.dataset))
            parts += [str(stat.st_size), str(stat.st_mtime_ns)]
        except OSError:
            parts.append("missing")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def measure(
    ctx: Context,
    name: str,
    subjects: list[str],
    model_uri: str,
    spec: EvaluationSpec,
    digest: str | None = None,
) -> EvaluationResult:
    """Return the evaluation of a model: from this unit of work, the cache, or measured now.

    `subjects` are the names it is cached under (the first is the one looked up). A result
    that measured something is cached; a failure is not (a timeout may not recur), but a
    redelivery in the same task reuses it through `ctx.measured`.
    """
    subject = subjects[0]
    memo = ctx.measured.get((name, subject))
    if memo is not None:
        return memo
    key = dataset_key(spec)
    if ctx.store is not None:
        digest = digest or ctx.store.dataset_digest_for(key)
        cached = ctx.store.evaluation(name, subject, digest) if digest else None
        if cached is not None:
            result = EvaluationResult.from_dict(cached)
            ctx.measured[(name, subject)] = result
            return result
    if ctx.evaluate is None:
        raise NoEvaluator(f"model {name!r} has an evaluation block but no evaluator is set up")
    run_tags = {"regpilot_model_name": name, "regpilot_subject": subject}
    result = ctx.evaluate(model_uri, spec, run_tags)
    log.info(
        "evaluation.measured",
        extra={"model": name, "outcome": result.failure or "measured", "run_id": model_uri},
    )
    ctx.measured[(name, subject)] = result
    if ctx.store is not None and result.failure is None and result.dataset_digest:
        ctx.store.remember_dataset_digest(key, result.dataset_digest)
        ctx.store.cache_evaluation(name, subjects, result.dataset_digest, result.as_dict())
    return result


def cache_for_version(ctx: Context, name: str, version: int, measurement: Measurement) -> None:
    """Cache a candidate's evaluation under its new version, for when it becomes champion."""
    result = measurement.result
    ctx.measured[(name, version_subject(version))] = result
    if ctx.store is not None and result.failure is None and result.dataset_digest:
        ctx.store.cache_evaluation(
            name, [version_subject(version)], result.dataset_digest, result.as_dict()
        )


def measure_candidate(
    ctx: Context,
    name: str,
    block: EvaluationPolicy,
    subjects: list[str],
    model_uri: str,
    snapshot: ModelSnapshot | None,
    own_version: int | None = None,
) -> tuple[Measurement, ModelSnapshot | None]:
    """Measure a candidate and, when `evaluation.champion` is set, the champion on its rows."""
    spec = block.spec()
    result = measure(ctx, name, subjects, model_uri, spec)
    champion: ChampionMeasurement | None = None
    if block.champion is not None and result.failure is None:
        snapshot = snapshot or read_snapshot(ctx, name)
        alias = ctx.policy.for_model(name).aliases.champion
        champ_version = snapshot.aliases.get(alias)
        if champ_version is not None and champ_version != own_version:
            champ_result = measure(
                ctx,
                name,
                [version_subject(champ_version)],
                f"models:/{name}/{champ_version}",
                spec,
                digest=result.dataset_digest,
            )
            champion = ChampionMeasurement(str(champ_version), champ_result)
    return Measurement(result, champion), snapshot


def judge_measured(
    ctx: Context,
    name: str,
    run: RunInfo,
    model: LoggedModel | None,
    verdict: Verdict,
    snapshot: ModelSnapshot | None,
    *,
    subjects: list[str],
    model_uri: str,
    own_version: int | None = None,
) -> tuple[Verdict, Measurement | None, ModelSnapshot | None]:
    """Add the measured gate's checks to a logged-metrics verdict (both gates apply).

    Without an `evaluation` block the verdict is returned unchanged.
    """
    block = ctx.policy.for_model(name).evaluation
    if block is None:
        return verdict, None, snapshot
    measurement, snapshot = measure_candidate(
        ctx, name, block, subjects, model_uri, snapshot, own_version
    )
    logged = {**run.metrics, **(model.metrics if model is not None else {})}
    checks = measured_gate(measurement.result, block.measured_rules(), logged, measurement.champion)
    return Verdict((*verdict.checks, *checks)), measurement, snapshot
