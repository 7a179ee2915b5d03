"""A Databricks job run finished: find the MLflow runs it made, send each down the run path.

The notification is only a hint: the job run is read back from the Jobs API, and only a run that
really succeeded is acted on. Each MLflow run then goes through `process_run_completed`, the
same gate, registration, aliases and retention as a run-completion webhook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from regpilot.core.databricks import (
    FoundRun,
    JobRunPhase,
    JobRunsFinder,
    JobsPort,
    job_run_lookup_ids,
)
from regpilot.core.records import PlainRecord
from regpilot.core.registry_port import (
    NotFound,
    RegistryError,
    RunPhase,
    TransientRegistryError,
    run_phase,
)
from regpilot.workflows.context import Context
from regpilot.workflows.run_completed import process_run_completed
from regpilot.workflows.validation import NoLoggedModel, NoModelName


class JobRunNotFinished(TransientRegistryError):
    """The job run is not terminal yet (the notification came early): try again later."""


@dataclass
class RunResult:
    """What happened to one MLflow run of the job run."""

    run_id: str
    job_run_id: int
    status: str  # processed | skipped | failed
    detail: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JobOutcome(PlainRecord):
    """What a job-completion notification led to (the task result)."""

    job_run_id: int
    job_id: int | None
    outcome: str  # processed | ignored
    detail: str
    searched_job_run_ids: list[int] = field(default_factory=list)
    runs: list[RunResult] = field(default_factory=list)


def process_job_completed(
    ctx: Context,
    jobs: JobsPort,
    finder: JobRunsFinder,
    run_id: int,
    parent_run_id: int | None = None,
) -> JobOutcome:
    """Handle a job-run success notification end to end; safe to run twice."""
    view = jobs.job_run(run_id)
    if view.phase is JobRunPhase.RUNNING:
        raise JobRunNotFinished(f"job run {run_id} is not finished ({view.result})")
    if view.phase is JobRunPhase.FAILED:
        return JobOutcome(
            run_id, view.job_id, "ignored", f"job run {run_id} did not succeed ({view.result})"
        )
    searched = job_run_lookup_ids(view, parent_run_id)
    found = finder.runs_for_job_runs(searched)
    results = [_process_run(ctx, run) for run in found]
    done = sum(1 for r in results if r.status == "processed")
    detail = (
        f"{done} of {len(found)} MLflow run(s) of job run {run_id} processed"
        if found
        else f"no MLflow run is tagged with job run ids {', '.join(map(str, searched))}"
    )
    return JobOutcome(run_id, view.job_id, "processed", detail, list(searched), results)


def _process_run(ctx: Context, run: FoundRun) -> RunResult:
    if run_phase(run.status) not in (RunPhase.FINISHED, RunPhase.FAILED):
        # A run still RUNNING after its task ended crashed without ending: it never finishes,
        # so waiting for it is pointless. A FAILED/KILLED run goes on, to get its FAILED
        # verdict (tags, report, history) like on every other path.
        return RunResult(run.run_id, run.job_run_id, "skipped", f"MLflow run is {run.status}")
    try:
        outcomes = process_run_completed(ctx, run.run_id, None)
    except NoLoggedModel as exc:
        return RunResult(run.run_id, run.job_run_id, "skipped", str(exc))
    except TransientRegistryError:
        raise  # the whole task is retried; the runs already done are idempotent
    except (NotFound, NoModelName, RegistryError) as exc:
        return RunResult(run.run_id, run.job_run_id, "failed", f"{type(exc).__name__}: {exc}")
    return RunResult(run.run_id, run.job_run_id, "processed", "", [o.as_dict() for o in outcomes])
