"""The databricks-sdk adapter: job runs, registry webhooks and stage-transition requests.

This is the only module that imports databricks-sdk (Unity Catalog goes through MLflow).
Every SDK error leaves here as a port error: NotFound, RegistryError (permanent) or
TransientRegistryError (retried by the task).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors
from databricks.sdk.config import Config
from databricks.sdk.errors.base import DatabricksError
from databricks.sdk.service import jobs, ml
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATABRICKS_JOB_RUN_ID

from config.settings import Settings
from regpilot.core.databricks import (
    FoundRun,
    JobRunPhase,
    JobRunView,
    TaskRunView,
    auth_problem,
    job_run_phase,
)
from regpilot.core.registry_port import NotFound, RegistryError, TransientRegistryError

# The MLflow side of the job lookup reads and translates errors as the MLflow adapter does.
from regpilot.registry.mlflow_registry import experiment_names, search_runs

log = logging.getLogger(__name__)
T = TypeVar("T")

PRODUCT = "regpilot"
_TRANSIENT = (
    sdk_errors.TooManyRequests,
    sdk_errors.InternalError,
    sdk_errors.TemporarilyUnavailable,
    sdk_errors.DeadlineExceeded,
    sdk_errors.Cancelled,
)
_PERMANENT = (
    sdk_errors.BadRequest,
    sdk_errors.Unauthenticated,
    sdk_errors.PermissionDenied,
    sdk_errors.ResourceConflict,
    sdk_errors.NotImplemented,
)


class DatabricksNotConfigured(RegistryError):
    """The worker was asked to call Databricks without a host and credentials."""


def _translate(call: Callable[[], T]) -> T:
    """Run an SDK call, mapping its errors to the port's permanent/transient errors."""
    try:
        return call()
    except sdk_errors.NotFound as exc:
        raise NotFound(str(exc)) from exc
    except _PERMANENT as exc:
        raise RegistryError(f"{type(exc).__name__}: {exc}") from exc
    except _TRANSIENT as exc:
        raise TransientRegistryError(f"{type(exc).__name__}: {exc}") from exc
    except DatabricksError as exc:
        # An unmapped status: retried a few times, then a dead letter a person can read.
        raise TransientRegistryError(f"{type(exc).__name__}: {exc}") from exc
    except (requests.RequestException, ConnectionError, TimeoutError) as exc:
        # The SDK raises TimeoutError when its own retry budget is spent.
        raise TransientRegistryError(f"{type(exc).__name__}: {exc}") from exc


def sdk_config(settings: Settings) -> Config:
    """Return the SDK Config built from Settings alone (the SDK is handed every value)."""
    problem = auth_problem(settings.databricks_host, **settings.databricks_credentials_given)
    if problem:
        raise DatabricksNotConfigured(problem)
    timeout = settings.databricks_http_timeout
    options: dict[str, Any] = {
        "http_timeout_seconds": timeout,
        # The SDK retries 429/503 by itself for 300 s by default; Celery owns longer waits.
        "retry_timeout_seconds": timeout * 2,
        "product": PRODUCT,
    }
    if settings.databricks_host:
        options["host"] = settings.databricks_host
    if settings.databricks_token is not None:
        options.update(token=settings.databricks_token.get_secret_value(), auth_type="pat")
    elif settings.databricks_client_id and settings.databricks_client_secret is not None:
        options.update(
            client_id=settings.databricks_client_id,
            client_secret=settings.databricks_client_secret.get_secret_value(),
            auth_type="oauth-m2m",
        )
    else:
        options["profile"] = settings.databricks_config_profile
    try:
        return Config(**options)
    except ValueError as exc:
        raise DatabricksNotConfigured(f"Databricks configuration refused: {exc}") from exc


def workspace_client(settings: Settings) -> WorkspaceClient:
    """Return a WorkspaceClient for the configured workspace."""
    return WorkspaceClient(config=sdk_config(settings))


def _enum_value(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _phase(state: jobs.RunState | None, status: jobs.RunStatus | None) -> tuple[JobRunPhase, str]:
    life = _enum_value(state.life_cycle_state) if state else None
    result = _enum_value(state.result_state) if state else None
    status_state = _enum_value(status.state) if status else None
    details = status.termination_details if status else None
    termination = _enum_value(details.type) if details else None
    phase = job_run_phase(life, result, status_state, termination)
    shown = result or (_enum_value(details.code) if details else None) or life or status_state
    return phase, shown or "UNKNOWN"


def _job_run_view(run: jobs.Run, run_id: int) -> JobRunView:
    phase, result = _phase(run.state, run.status)
    tasks = tuple(
        TaskRunView(task.run_id, task.task_key, _phase(task.state, task.status)[0])
        for task in (run.tasks or [])
        if task.run_id is not None
    )
    return JobRunView(
        run_id=run.run_id if run.run_id is not None else run_id,
        job_id=run.job_id,
        phase=phase,
        result=result,
        tasks=tasks,
        run_page_url=run.run_page_url,
    )


@dataclass(frozen=True)
class WebhookTestResult:
    """What the registry got back from regpilot when it fired a test event."""

    status_code: int | None
    body: str | None


class DatabricksWorkspace:
    """The Databricks calls regpilot makes, on one WorkspaceClient."""

    def __init__(self, client: WorkspaceClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabricksWorkspace:
        """Build the adapter for the configured workspace."""
        return cls(workspace_client(settings))

    # --- jobs ---------------------------------------------------------------------------

    def job_run(self, run_id: int) -> JobRunView:
        """Return a job run and its task runs (the SDK follows next_page_token past 100 tasks)."""
        run = _translate(lambda: self.client.jobs.get_run(run_id))
        return _job_run_view(run, run_id)

    # --- stage-transition requests (workspace model registry) ---------------------------

    def open_transition_stages(self, name: str, version: int) -> list[str]:
        """Return the stages open transition requests on a version ask for."""
        requests_ = _translate(
            lambda: list(self.client.model_registry.list_transition_requests(name, str(version)))
        )
        return list(dict.fromkeys(r.to_stage for r in requests_ if r.to_stage))

    def approve_transition(self, name: str, version: int, stage: str, comment: str) -> None:
        """Approve a request (the registry then moves the version); never archive others."""
        _translate(
            lambda: self.client.model_registry.approve_transition_request(
                name, str(version), stage, False, comment=comment
            )
        )

    def reject_transition(self, name: str, version: int, stage: str, comment: str) -> None:
        """Reject a request with a comment."""
        _translate(
            lambda: self.client.model_registry.reject_transition_request(
                name, str(version), stage, comment=comment
            )
        )

    # --- registry webhooks ----------------------------------------------------------------

    def registry_webhooks(self, model_name: str | None = None) -> list[ml.RegistryWebhook]:
        """Return the registry webhooks (of one model, or all)."""
        return _translate(
            lambda: list(self.client.model_registry.list_webhooks(model_name=model_name))
        )

    def install_registry_webhook(
        self,
        url: str,
        secret: str,
        events: Sequence[str],
        *,
        model_name: str | None = None,
        description: str = "regpilot: validate, tag, alias and review transition requests",
    ) -> tuple[str, str]:
        """Create the HTTP registry webhook, or update the one already posting to `url`.

        Returns (webhook id, "created" | "updated").
        """
        wanted = [ml.RegistryWebhookEvent(e) for e in events]
        spec = ml.HttpUrlSpec(url=url, secret=secret, enable_ssl_verification=True)
        existing = [
            hook.id
            for hook in self.registry_webhooks(model_name)
            if hook.id
            and hook.model_name == model_name
            and hook.http_url_spec is not None
            and hook.http_url_spec.url == url
        ]
        if existing:
            hook_id = existing[0]
            _translate(
                lambda: self.client.model_registry.update_webhook(
                    hook_id,
                    events=wanted,
                    http_url_spec=spec,
                    status=ml.RegistryWebhookStatus.ACTIVE,
                    description=description,
                )
            )
            return hook_id, "updated"
        created = _translate(
            lambda: self.client.model_registry.create_webhook(
                wanted,
                http_url_spec=spec,
                model_name=model_name,
                description=description,
                status=ml.RegistryWebhookStatus.ACTIVE,
            )
        )
        if created.webhook is None or not created.webhook.id:
            raise RegistryError("the registry created a webhook but returned no id")
        return created.webhook.id, "created"

    def test_registry_webhook(self, webhook_id: str, event: str | None = None) -> WebhookTestResult:
        """Make the registry fire a test event at the webhook; return what the receiver said."""
        chosen = ml.RegistryWebhookEvent(event) if event else None
        result = _translate(
            lambda: self.client.model_registry.test_registry_webhook(webhook_id, event=chosen)
        )
        return WebhookTestResult(result.status_code, result.body)


class MlflowJobRunsFinder:
    """Find MLflow runs by the job-run id MLflow tags runs made inside a Databricks job with."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowJobRunsFinder:
        """Build the finder on the configured tracking server."""
        return cls(MlflowClient(tracking_uri=settings.mlflow_tracking_uri))

    def runs_for_job_runs(self, job_run_ids: Sequence[int]) -> list[FoundRun]:
        """Return the runs tagged `mlflow.databricks.jobRunID` = any of `job_run_ids`.

        Tag filters take `=` only (no IN), so there is one search per id and experiment chunk.
        """
        if not job_run_ids:
            return []
        experiments = sorted(experiment_names(self.client))
        found: dict[str, FoundRun] = {}
        for job_run_id in job_run_ids:
            query = f"tags.`{MLFLOW_DATABRICKS_JOB_RUN_ID}` = '{int(job_run_id)}'"
            for run in search_runs(self.client, experiments, query):
                found.setdefault(
                    run.info.run_id, FoundRun(run.info.run_id, run.info.status, job_run_id)
                )
        return sorted(found.values(), key=lambda r: r.run_id)
