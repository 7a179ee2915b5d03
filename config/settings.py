"""The one place that reads the environment: every knob regpilot has is a field here."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.yaml")


def _split_secrets(raw: SecretStr | None) -> list[str]:
    # Several secrets separated by commas: MLflow keeps signing with the old secret for up to
    # 60 s after a rotation (its webhook cache), so the receiver must accept both for a while.
    if raw is None:
        return []
    return [part.strip() for part in raw.get_secret_value().split(",") if part.strip()]


class Settings(BaseSettings):
    """Read every REGPILOT_* variable (plus MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI)."""

    model_config = SettingsConfigDict(
        env_prefix="REGPILOT_",
        env_file=None,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    mlflow_tracking_uri: str = Field(
        default="http://127.0.0.1:5000",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "mlflow_tracking_uri"),
        description="MLflow tracking server the worker reads runs from and registers into.",
    )
    mlflow_registry_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_REGISTRY_URI", "mlflow_registry_uri"),
        description="Registry URI when it differs from the tracking URI (`databricks-uc`).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis for delivery dedupe, locks, history and (by default) the Celery broker.",
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker URL; defaults to REGPILOT_REDIS_URL."
    )
    key_prefix: str = Field(
        default="regpilot:", description="Prefix of every Redis key regpilot writes."
    )
    task_queue: str = Field(default="regpilot", description="Celery queue the tasks go to.")
    mlflow_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret(s) of the MLflow registry webhook; comma-separated during a rotation.",
    )
    run_webhook_secret: SecretStr | None = Field(
        default=None,
        description="`whsec_` secret(s) for POST /webhooks/runs (Standard Webhooks); "
        "comma-separated during a rotation.",
    )
    insecure_no_signature: bool = Field(
        default=False,
        description="Accept unsigned webhooks when no secret is set. Local play only.",
    )
    policy_file: Path = Field(default=DEFAULT_POLICY_FILE, description="Governance policy (YAML).")
    timestamp_tolerance_seconds: int = Field(
        default=300, ge=1, description="Max clock difference for a signed webhook timestamp."
    )
    delivery_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="How long a delivery id is remembered."
    )
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Larger webhook bodies get 413 before parsing."
    )
    lock_timeout_seconds: int = Field(
        default=120,
        ge=5,
        description="Per-model lock expiry, so a dead worker cannot wedge a model.",
    )
    history_max_events: int = Field(
        default=10_000, ge=10, description="Received deliveries kept in the event history."
    )
    decisions_max_per_model: int = Field(
        default=1_000, ge=10, description="Decision records kept per model."
    )
    mlflow_http_max_retries: int = Field(
        default=1, ge=0, le=10, description="MLflow client's own HTTP retries (Celery retries too)."
    )
    mlflow_http_timeout: int = Field(
        default=15, ge=1, description="Seconds per MLflow REST call from the worker."
    )
    task_max_retries: int = Field(
        default=5, ge=0, description="Retries of a transient failure before it is a dead letter."
    )
    task_retry_backoff_max: int = Field(
        default=300, ge=1, description="Upper bound of the exponential retry backoff, seconds."
    )
    reconcile_interval_seconds: int = Field(
        default=300, ge=10, description="How often beat sweeps MLflow for work no webhook brought."
    )
    reconcile_lookback_hours: float = Field(
        default=24.0, gt=0, description="How far back a reconciliation sweep looks."
    )
    broker_visibility_timeout: int = Field(
        default=3600,
        ge=5,
        description="Seconds before Redis hands an unacknowledged task (dead worker) to another "
        "worker; must exceed the longest task plus its retry backoff.",
    )
    ops_token: SecretStr | None = Field(
        default=None, description="Bearer token of the /ops/ API; unset turns the ops API off."
    )
    ops_cookie_secure: bool = Field(
        default=False,
        description="Send the ops page's session cookie over HTTPS only; turn on behind TLS.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port where `regpilot worker` serves the Prometheus metrics of all its pool "
        "processes; unset turns the worker's exporter off.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="Interface the worker's metrics exporter binds."
    )
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"),
        description="prometheus-client's multiprocess directory (one per container; gunicorn "
        "and the worker make a private one when unset). prometheus-client reads it too.",
    )
    uc_catalog: str = Field(default="main", description="Unity Catalog catalog for short names.")
    uc_schema: str = Field(default="ml_models", description="Unity Catalog schema for short names.")
    databricks_enabled: bool = Field(
        default=False,
        description="Serve POST /webhooks/databricks/jobs and /webhooks/databricks/registry; "
        "needs DATABRICKS_HOST and a token, a client id and secret, or a profile.",
    )
    databricks_host: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABRICKS_HOST", "databricks_host"),
        description="Databricks workspace URL the worker calls (jobs, registry, transitions).",
    )
    databricks_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABRICKS_TOKEN", "databricks_token"),
        description="Databricks personal access token (or use a client id and secret).",
    )
    databricks_client_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABRICKS_CLIENT_ID", "databricks_client_id"),
        description="Databricks service principal client id (OAuth machine-to-machine).",
    )
    databricks_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABRICKS_CLIENT_SECRET", "databricks_client_secret"),
        description="Databricks service principal OAuth secret.",
    )
    databricks_config_profile: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABRICKS_CONFIG_PROFILE", "databricks_config_profile"),
        description="Profile in ~/.databrickscfg to authenticate with instead of the above.",
    )
    databricks_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Secret(s) of the Databricks registry webhook (X-Databricks-Signature); "
        "comma-separated during a rotation.",
    )
    databricks_jobs_username: str | None = Field(
        default=None,
        description="HTTP Basic user name the job notification destination sends.",
    )
    databricks_jobs_password: SecretStr | None = Field(
        default=None,
        description="HTTP Basic password the job notification destination sends.",
    )
    databricks_jobs_token: SecretStr | None = Field(
        default=None,
        description="Bearer token(s) accepted on POST /webhooks/databricks/jobs; comma-separated "
        "during a rotation.",
    )
    databricks_http_timeout: int = Field(
        default=30,
        ge=1,
        description="Seconds per Databricks REST call; the SDK's own retries stop after twice "
        "this.",
    )
    mlflow_webhook_allowed_schemes: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "mlflow_webhook_allowed_schemes"
        ),
        description="The MLflow server's own setting, when known here: `webhooks install` "
        "warns about an http:// receiver only when it does not allow http.",
    )
    mlflow_webhook_allow_private_ips: bool | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "mlflow_webhook_allow_private_ips"
        ),
        description="The MLflow server's own setting, when known here: `webhooks install` "
        "warns about a private receiver address only when it is not true.",
    )
    log_format: Literal["text", "json"] = Field(default="text", description="Log line format.")
    log_level: str = Field(default="INFO", description="Python log level.")
    state_dir: Path = Field(
        default=Path(".regpilot"),
        description="Where `regpilot up`/`demo` keep the local MLflow database and keys.",
    )

    @field_validator("key_prefix")
    @classmethod
    def _prefix_ends_with_colon(cls, value: str) -> str:
        return value if value.endswith(":") else value + ":"

    @cached_property
    def mlflow_webhook_secrets(self) -> list[str]:
        """Return the MLflow webhook secrets, newest first."""
        return _split_secrets(self.mlflow_webhook_secret)

    @cached_property
    def run_webhook_secrets(self) -> list[str]:
        """Return the run-completion webhook secrets, newest first."""
        return _split_secrets(self.run_webhook_secret)

    @cached_property
    def databricks_webhook_secrets(self) -> list[str]:
        """Return the Databricks registry webhook secrets, newest first."""
        return _split_secrets(self.databricks_webhook_secret)

    @cached_property
    def databricks_jobs_tokens(self) -> list[str]:
        """Return the bearer tokens accepted for Databricks job notifications, newest first."""
        return _split_secrets(self.databricks_jobs_token)

    @property
    def effective_broker_url(self) -> str:
        """Return the Celery broker URL (the Redis URL unless a broker is set)."""
        return self.broker_url or self.redis_url

    @property
    def uses_unity_catalog(self) -> bool:
        """Tell whether the registry is Databricks Unity Catalog."""
        return (self.mlflow_registry_uri or "").startswith("databricks-uc")


def settings_environment(settings: Settings) -> dict[str, str]:
    """Return the environment variables that reproduce `settings` in a child process."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def child_environment(overrides: dict[str, str]) -> dict[str, str]:
    """Return this process's environment plus overrides, for a child process we start."""
    env = dict(os.environ)
    env.update(overrides)
    return env


def env_name(field: str) -> str:
    """Return the environment variable that sets a Settings field."""
    info = Settings.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        return str(first)
    return f"REGPILOT_{field.upper()}"
