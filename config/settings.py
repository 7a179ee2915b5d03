"""The one place that reads the environment: every knob regpilot has is a field here."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from regpilot.core.signatures import decode_standard_secret

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.yaml")
OPS_TOKEN_MIN_LENGTH = 32


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
    evaluation_queue: str | None = Field(
        default=None,
        description="Celery queue model evaluations go to (unset: the task queue).",
    )
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
        default=None,
        description="Bearer token of the /ops/ API and page login, at least 32 characters; "
        "unset turns the ops API off.",
    )
    ops_cookie_secure: bool = Field(
        default=False,
        description="Send the ops page's session cookie over HTTPS only; turn on behind TLS. "
        "Also on for any request that arrived over HTTPS (X-Forwarded-Proto with "
        "REGPILOT_TRUST_PROXY).",
    )
    ops_session_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        description="Lifetime of an ops page login; the session lives in Redis and logout ends it.",
    )
    ops_login_max_failures: int = Field(
        default=10,
        ge=1,
        description="Wrong ops tokens (login form or bearer) one client may offer per window "
        "before it gets 429.",
    )
    ops_login_window_seconds: int = Field(
        default=900,
        ge=1,
        description="Window, in seconds, over which wrong ops tokens are counted per client.",
    )
    trust_proxy: bool = Field(
        default=False,
        description="Trust one reverse proxy's X-Forwarded-For/-Proto/-Host (client address, "
        "HTTPS, origin check). Only when a proxy that sets them is the sole way in.",
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
    mlflow_ui_url: str | None = Field(
        default=None,
        description="MLflow UI base URL for links in notifications; defaults to the tracking URI.",
    )
    notify_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="Seconds per notification POST (Slack, Teams, webhook) before it is retried.",
    )
    log_format: Literal["text", "json"] = Field(default="text", description="Log line format.")
    log_level: str = Field(default="INFO", description="Python log level.")
    state_dir: Path = Field(
        default=Path(".regpilot"),
        description="Where `regpilot up`/`demo` keep the local MLflow database and keys.",
    )

    def secret_problems(self, fields: Iterable[str] | None = None) -> list[str]:
        """Return why configured secrets are unusable, naming variable and entry, never values.

        Each entry of a rotation list is checked on its own: one bad entry would otherwise turn
        every delivery into a 500 (the verifier decodes all of them), good entries included.
        An entirely empty variable counts as unset. `fields` limits the check to what a process
        uses (the worker only calls Databricks).
        """
        wanted = set(SECRET_CHECKS) if fields is None else set(fields)
        problems: list[str] = []
        for name, (check, is_list) in SECRET_CHECKS.items():
            value = getattr(self, name)
            if name not in wanted or value is None:
                continue
            raw = value.get_secret_value()
            if not raw.strip():
                continue
            entries = raw.split(",") if is_list else [raw]
            for position, entry in enumerate(entries, start=1):
                problem = check(entry.strip() if is_list else entry)
                if problem is None:
                    continue
                where = f" entry {position} of {len(entries)}" if is_list else ""
                problems.append(f"{env_name(name)}{where}: {problem}")
        return problems

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
    def effective_mlflow_ui_url(self) -> str:
        """Return the MLflow UI base URL that notification links point at."""
        return self.mlflow_ui_url or self.mlflow_tracking_uri

    @property
    def uses_unity_catalog(self) -> bool:
        """Tell whether the registry is Databricks Unity Catalog, by MLflow 3's own rule.

        A `databricks` tracking URI without a registry URI means Unity Catalog too.
        """
        from regpilot.core.registry_port import UNITY_CATALOG_CAPABILITIES, registry_kind

        kind = registry_kind(self.mlflow_tracking_uri, self.mlflow_registry_uri)
        return kind == UNITY_CATALOG_CAPABILITIES.kind


def _raw_secret_problem(entry: str) -> str | None:
    # Used as an HMAC key in UTF-8: it must not be empty and must encode.
    if not entry:
        return "is empty (a stray comma?)"
    try:
        entry.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def _standard_secret_problem(entry: str) -> str | None:
    if not entry:
        return "is empty (a stray comma?)"
    try:
        decode_standard_secret(entry)
    except ValueError as exc:
        return f"{exc}; expected whsec_ followed by standard base64 (Standard Webhooks)"
    return None


def _header_token_problem(entry: str) -> str | None:
    # Travels in an Authorization header: visible ASCII only.
    if not entry:
        return "is empty (a stray comma?)"
    if not all("!" <= char <= "~" for char in entry):
        return "holds spaces, control or non-ASCII characters (it goes into an HTTP header)"
    return None


def _ops_token_problem(entry: str) -> str | None:
    # Typed into the login form or sent as a bearer header: printable ASCII, spaces only inside.
    if entry != entry.strip():
        return "starts or ends with whitespace"
    if not all(" " <= char <= "~" for char in entry):
        return "holds control or non-ASCII characters (it goes into an HTTP header)"
    if len(entry) < OPS_TOKEN_MIN_LENGTH:
        return (
            f"is {len(entry)} characters; use at least {OPS_TOKEN_MIN_LENGTH} "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return None


# Field -> (check of one entry, whether the variable is a comma-separated rotation list).
SECRET_CHECKS: dict[str, tuple[Callable[[str], str | None], bool]] = {
    "mlflow_webhook_secret": (_raw_secret_problem, True),
    "run_webhook_secret": (_standard_secret_problem, True),
    "databricks_webhook_secret": (_raw_secret_problem, True),
    "databricks_jobs_token": (_header_token_problem, True),
    "databricks_jobs_password": (_raw_secret_problem, False),
    "databricks_token": (_header_token_problem, False),
    "databricks_client_secret": (_header_token_problem, False),
    "ops_token": (_ops_token_problem, False),
}
WORKER_SECRETS = ("databricks_token", "databricks_client_secret")


NOTIFY_VARIABLE_PREFIX = "REGPILOT_NOTIFY_"


def notify_variable(name: str) -> SecretStr | None:
    """Return a notification URL or secret the policy names by variable (`url_env`, `secret_env`).

    Only REGPILOT_NOTIFY_* variables are readable this way, so a policy file can never send
    another secret of the process to a URL it declares. None when the variable is unset or empty.
    """
    if not name.startswith(NOTIFY_VARIABLE_PREFIX):
        raise ValueError(f"{name}: notification variables must start with {NOTIFY_VARIABLE_PREFIX}")
    value = os.environ.get(name, "").strip()
    return SecretStr(value) if value else None


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
