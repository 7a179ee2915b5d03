"""Databricks decisions as pure functions: payload shapes, event routing, job-run phases.

Sources: Databricks "Workspace Model Registry webhooks" and "Add notifications on a job" pages and
databricks-sdk (see /work/shared/design/databricks.md). Shapes the docs do not show are accepted
loosely here and marked unverified in docs/DATABRICKS.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from regpilot.core.events import ModelName, PayloadError, describe_validation_error
from regpilot.core.gate import Verdict

# --- job notification webhooks (jobs.on_start, jobs.on_success, ...) -------------------------

JOB_SUCCESS = "jobs.on_success"
# Documented codes; the streaming-backlog event has no documented code, so any other `jobs.*`
# code is accepted and recorded as not acted on.
JOB_EVENTS = frozenset(
    {
        "jobs.on_start",
        JOB_SUCCESS,
        "jobs.on_failure",
        "jobs.on_duration_warning_threshold_exceeded",
    }
)
_MAX_ID_DIGITS = 19  # Databricks ids are int64


def _as_id(value: Any) -> Any:
    # The docs show the ids as strings, a public receiver decodes them as int64: accept both.
    if isinstance(value, bool):
        raise ValueError("must be an integer id")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be a non-negative integer id")
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= _MAX_ID_DIGITS:
            return int(text)
    raise ValueError("must be an integer id (a number or a string of digits)")


DatabricksId = Annotated[int, BeforeValidator(_as_id)]
ShortText = Annotated[str, StringConstraints(max_length=1024)]


class _Loose(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def _parse(model: type[_Loose], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc)) from exc


class JobRunRef(_Loose):
    """`run` of a job notification: the job run, or the task run for task-level ones."""

    run_id: DatabricksId
    parent_run_id: DatabricksId | None = None


class JobRef(_Loose):
    """`job` of a job notification."""

    job_id: DatabricksId | None = None
    name: ShortText | None = None


class TaskRef(_Loose):
    """`task` of a task-level job notification."""

    task_key: ShortText | None = None


class JobNotification(_Loose):
    """A job notification webhook: a hint that a job run changed state, never trusted as is."""

    event_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,127}$")]
    workspace_id: DatabricksId | None = None
    run: JobRunRef
    job: JobRef | None = None
    task: TaskRef | None = None


def parse_job_notification(data: Any) -> JobNotification:
    """Validate a job notification body, or raise PayloadError saying why."""
    parsed: JobNotification = _parse(JobNotification, data)
    return parsed


# --- job runs, as read back from the Jobs API -------------------------------------------------


class JobRunPhase(StrEnum):
    """Where a job run is, as far as regpilot cares."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
_SUCCESS_RESULTS = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})


def job_run_phase(
    life_cycle_state: str | None,
    result_state: str | None,
    status_state: str | None = None,
    termination_type: str | None = None,
) -> JobRunPhase:
    """Return a run's phase from `state` (life cycle + result), else from the newer `status`.

    "Succeeded with failures" counts as success, as it does for the on_success notification. A
    run whose state cannot be read counts as still running: the task retries, then dead-letters.
    """
    if life_cycle_state:
        if life_cycle_state not in _TERMINAL:
            return JobRunPhase.RUNNING
        return JobRunPhase.SUCCEEDED if result_state in _SUCCESS_RESULTS else JobRunPhase.FAILED
    if status_state:
        if status_state != "TERMINATED":
            return JobRunPhase.RUNNING
        return JobRunPhase.SUCCEEDED if termination_type == "SUCCESS" else JobRunPhase.FAILED
    return JobRunPhase.RUNNING


@dataclass(frozen=True)
class TaskRunView:
    """One task run of a multi-task job run."""

    run_id: int
    task_key: str | None
    phase: JobRunPhase


@dataclass(frozen=True)
class JobRunView:
    """A job run as fetched with jobs.get_run: its phase and its task runs."""

    run_id: int
    job_id: int | None
    phase: JobRunPhase
    result: str
    tasks: tuple[TaskRunView, ...] = ()
    run_page_url: str | None = None


def job_run_lookup_ids(view: JobRunView, parent_run_id: int | None = None) -> tuple[int, ...]:
    """Return the job-run ids an MLflow run of this job run may be tagged with.

    MLflow tags a run made in a job with `mlflow.databricks.jobRunID`; whether that is the task
    run id or the parent run id in multi-task jobs is unverified, so both are searched. Task
    runs that did not succeed are left out: their MLflow runs are not candidates.
    """
    ids = [view.run_id]
    if parent_run_id is not None:
        ids.append(parent_run_id)
    ids.extend(task.run_id for task in view.tasks if task.phase is JobRunPhase.SUCCEEDED)
    return tuple(dict.fromkeys(ids))


@dataclass(frozen=True)
class FoundRun:
    """An MLflow run a job run produced."""

    run_id: str
    status: str
    job_run_id: int


class JobsPort(Protocol):
    """Read job runs (databricks-sdk `w.jobs.get_run`)."""

    def job_run(self, run_id: int) -> JobRunView: ...


class JobRunsFinder(Protocol):
    """Find the MLflow runs tagged with any of these job-run ids."""

    def runs_for_job_runs(self, job_run_ids: Sequence[int]) -> Sequence[FoundRun]: ...


# --- workspace model registry webhooks ----------------------------------------------------------

MODEL_VERSION_CREATED = "MODEL_VERSION_CREATED"
TRANSITION_REQUEST_CREATED = "TRANSITION_REQUEST_CREATED"
# Stage implied by the event name, for the *_TO_*_CREATED events.
TRANSITION_REQUEST_EVENTS: dict[str, str | None] = {
    TRANSITION_REQUEST_CREATED: None,
    "TRANSITION_REQUEST_TO_STAGING_CREATED": "Staging",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED": "Production",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED": "Archived",
}
INFORMATIONAL_EVENTS = frozenset(
    {
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_TO_STAGING",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
        "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
        "COMMENT_CREATED",
        "REGISTERED_MODEL_CREATED",
        "MODEL_VERSION_TAG_SET",
    }
)
REGISTRY_EVENTS = frozenset(
    {MODEL_VERSION_CREATED, *TRANSITION_REQUEST_EVENTS, *INFORMATIONAL_EVENTS}
)
# Events whose payload names a model version; COMMENT_CREATED may be on the model alone.
_NEEDS_VERSION = frozenset(
    {MODEL_VERSION_CREATED, *TRANSITION_REQUEST_EVENTS, *INFORMATIONAL_EVENTS}
    - {"COMMENT_CREATED", "REGISTERED_MODEL_CREATED"}
)
# Requests regpilot answers; a request to archive (or to None) is left to people.
REVIEWED_STAGES = frozenset({"Staging", "Production"})


def _as_version(value: Any) -> Any:
    # The docs show `version` as a string; accept a JSON number too.
    if isinstance(value, bool):
        raise ValueError("must be a version number")
    if isinstance(value, int):
        return str(value)
    return value


Version = Annotated[
    str, BeforeValidator(_as_version), StringConstraints(pattern=r"^[1-9][0-9]{0,8}$")
]
Stage = Annotated[str, StringConstraints(max_length=32)]


class RegistryTag(_Loose):
    """One entry of `tags` in MODEL_VERSION_TAG_SET."""

    key: Annotated[str, StringConstraints(max_length=1024)]
    value: Annotated[str, StringConstraints(max_length=100_000)] | None = None


class RegistryEvent(_Loose):
    """A workspace model registry webhook body (every documented event)."""

    event: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z_]{0,63}$")]
    webhook_id: ShortText | None = None
    event_timestamp: int | None = None
    model_name: ModelName | None = None
    version: Version | None = None
    from_stage: Stage | None = None
    to_stage: Stage | None = None
    tags: list[RegistryTag] = Field(default_factory=list)
    comment: Annotated[str, StringConstraints(max_length=100_000)] | None = None
    text: Annotated[str, StringConstraints(max_length=100_000)] | None = None

    @property
    def version_number(self) -> int:
        """Return the version as a number (only for events that carry one)."""
        if self.version is None:
            raise ValueError(f"{self.event} carries no version")
        return int(self.version)


def parse_registry_event(data: Any) -> RegistryEvent:
    """Validate a registry webhook body, or raise PayloadError saying what is missing."""
    event: RegistryEvent = _parse(RegistryEvent, data)
    if event.event in REGISTRY_EVENTS and not event.model_name:
        raise PayloadError(f"{event.event} needs model_name")
    if event.event in _NEEDS_VERSION and event.version is None:
        raise PayloadError(f"{event.event} needs version")
    return event


class RegistryAction(StrEnum):
    """What regpilot does with a registry event."""

    VALIDATE_VERSION = "validate_version"
    REVIEW_TRANSITION = "review_transition"
    IGNORE = "ignore"


def registry_action(event: RegistryEvent) -> tuple[RegistryAction, str]:
    """Return what to do with a registry event and, for IGNORE, why."""
    if event.event == MODEL_VERSION_CREATED:
        return RegistryAction.VALIDATE_VERSION, ""
    if event.event in TRANSITION_REQUEST_EVENTS:
        stage = requested_stage(event)
        if stage is not None and stage not in REVIEWED_STAGES:
            return RegistryAction.IGNORE, f"requests to move to {stage} are left to people"
        return RegistryAction.REVIEW_TRANSITION, ""
    if event.event in INFORMATIONAL_EVENTS:
        return RegistryAction.IGNORE, f"event {event.event} needs no action"
    return RegistryAction.IGNORE, f"unknown event {event.event}"


def requested_stage(event: RegistryEvent) -> str | None:
    """Return the stage a transition request asks for: `to_stage`, else the event's own."""
    if event.to_stage and event.to_stage != "None":
        return event.to_stage
    return TRANSITION_REQUEST_EVENTS.get(event.event)


class TransitionPort(Protocol):
    """Answer stage-transition requests (databricks-sdk `w.model_registry`)."""

    def open_transition_stages(self, name: str, version: int) -> list[str]: ...

    def approve_transition(self, name: str, version: int, stage: str, comment: str) -> None: ...

    def reject_transition(self, name: str, version: int, stage: str, comment: str) -> None: ...


MAX_COMMENT = 1000


def transition_comment(verdict: Verdict, stage: str, limit: int = MAX_COMMENT) -> str:
    """Return the comment approving or rejecting a request: the verdict and each failed check."""
    if verdict.passed:
        head = f"regpilot: PASSED, approved for {stage}."
        lines = [f"{c.name} {c.actual} ({c.expected})" for c in verdict.checks]
        text = head + (" Checks: " + "; ".join(lines) + "." if lines else "")
    else:
        head = f"regpilot: FAILED, rejected for {stage}."
        lines = [
            f"{c.name}: expected {c.expected}, got {c.actual}"
            + (f" ({c.reason})" if c.reason else "")
            for c in verdict.failures
        ]
        text = head + " Failed checks: " + "; ".join(lines) + "."
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- configuration --------------------------------------------------------------------------


def auth_problem(
    host: str | None,
    *,
    token: bool,
    client_id: bool,
    client_secret: bool,
    profile: str | None,
) -> str | None:
    """Return why the Databricks credentials cannot work, or None when they look complete."""
    if profile:
        return None  # the profile in ~/.databrickscfg names the host and the credentials
    if not host:
        return (
            "Databricks is enabled but DATABRICKS_HOST is not set (or set "
            "DATABRICKS_CONFIG_PROFILE to a profile in ~/.databrickscfg)"
        )
    if token or (client_id and client_secret):
        return None
    if client_id or client_secret:
        return "DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET must be set together"
    return (
        "Databricks is enabled but has no credentials: set DATABRICKS_TOKEN, or "
        "DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, or DATABRICKS_CONFIG_PROFILE"
    )
