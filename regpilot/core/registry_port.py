"""The registry port: what the workflows need from a model registry, as plain data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit


class RegistryError(Exception):
    """Base of every error an adapter raises."""


class NotFound(RegistryError):
    """The run, model or version does not exist: permanent, never retried."""


class TransientRegistryError(RegistryError):
    """The registry is unreachable or overloaded (5xx, 429, timeouts): retry later."""


class Unsupported(RegistryError):
    """The operation does not exist on this registry (stages on Unity Catalog): permanent.

    Retrying cannot help, so tasks record it as a result and never retry it.
    """


@dataclass(frozen=True)
class RegistryCapabilities:
    """What a registry supports, declared by its adapter so workflows never probe it."""

    supports_aliases: bool
    supports_stages: bool
    supports_tags: bool = True
    requires_signature: bool = False
    kind: str = "mlflow"


OSS_CAPABILITIES = RegistryCapabilities(supports_aliases=True, supports_stages=True, kind="mlflow")
# Unity Catalog: aliases, no stages, and a model must carry a signature with inputs and outputs.
UNITY_CATALOG_CAPABILITIES = RegistryCapabilities(
    supports_aliases=True, supports_stages=False, requires_signature=True, kind="unity-catalog"
)
# The Databricks Workspace Model Registry: stages, but MLflow's client refuses every alias call.
WORKSPACE_CAPABILITIES = RegistryCapabilities(
    supports_aliases=False, supports_stages=True, kind="databricks-workspace"
)


def registry_kind(tracking_uri: str, registry_uri: str | None) -> str:
    """Return which registry MLflow talks to for these URIs, by MLflow 3's own rule.

    Without a registry URI, a `databricks` tracking URI means Unity Catalog (`databricks-uc`);
    any other tracking URI is its own registry.
    """
    scheme = registry_scheme(registry_uri_for(tracking_uri, registry_uri))
    if scheme in ("databricks-uc", "uc"):
        return UNITY_CATALOG_CAPABILITIES.kind
    if scheme == "databricks":
        return WORKSPACE_CAPABILITIES.kind
    return OSS_CAPABILITIES.kind


def registry_uri_for(tracking_uri: str, registry_uri: str | None) -> str:
    """Return the registry URI MLflow uses for these URIs.

    An explicit registry URI wins; otherwise a Databricks tracking URI (`databricks`,
    `databricks://profile`) means Unity Catalog (`databricks-uc`, with the same profile), and any
    other tracking URI is also the registry URI
    (mlflow/tracking/_model_registry/utils.py `_get_default_registry_uri_for_tracking_uri`).
    """
    if registry_uri:
        return registry_uri
    if registry_scheme(tracking_uri) != "databricks":
        return tracking_uri
    profile = urlsplit(tracking_uri).netloc
    return f"databricks-uc://{profile}" if profile else "databricks-uc"


def registry_scheme(uri: str) -> str:
    """Return the scheme MLflow picks a store by (`databricks` and `databricks-uc` bare or not)."""
    return uri if uri in ("databricks", "databricks-uc", "uc") else urlsplit(uri).scheme


class RunPhase(StrEnum):
    """Where a run is in its life, as far as judging its model goes."""

    NOT_FINISHED = "not_finished"  # RUNNING or SCHEDULED: judge it later
    FINISHED = "finished"  # ended well: judge its model
    FAILED = "failed"  # FAILED or KILLED: its model may be incomplete, never bless it
    UNKNOWN = "unknown"  # no run to look at (a version registered from a path)


_RUN_PHASES = {
    "RUNNING": RunPhase.NOT_FINISHED,
    "SCHEDULED": RunPhase.NOT_FINISHED,
    "FINISHED": RunPhase.FINISHED,
    "FAILED": RunPhase.FAILED,
    "KILLED": RunPhase.FAILED,
}


def run_phase(status: str | None) -> RunPhase:
    """Return the phase of a run status: the one rule for which run states count as finished."""
    return _RUN_PHASES.get((status or "").upper(), RunPhase.UNKNOWN)


READY = "READY"


@dataclass(frozen=True)
class LoggedModel:
    """A model a run logged (MLflow 3 LoggedModel, or a `runs:/` artifact path)."""

    model_id: str | None
    name: str
    uri: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    flavor: str | None = None
    has_signature: bool | None = None
    features: tuple[str, ...] = ()
    creation_ms: int | None = None
    # MLflow 3 LoggedModel status (READY, PENDING, FAILED); None for a `runs:/` artifact dir.
    status: str | None = None
    # Whether the model directory holds an MLmodel file; None when it was not looked at.
    has_mlmodel: bool | None = None


@dataclass(frozen=True)
class RunInfo:
    """A training run as the gate and the registration need it."""

    run_id: str
    experiment_id: str
    experiment_name: str | None
    status: str
    start_ms: int | None
    end_ms: int | None
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]
    model_ids: tuple[str, ...] = ()

    @property
    def phase(self) -> RunPhase:
        """Return where the run is in its life (see `run_phase`)."""
        return run_phase(self.status)

    @property
    def finished(self) -> bool:
        """Tell whether the run ended successfully."""
        return self.phase is RunPhase.FINISHED


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version."""

    name: str
    version: int
    run_id: str | None
    source: str | None
    stage: str | None
    status: str | None
    description: str | None
    aliases: tuple[str, ...]
    tags: Mapping[str, str]
    creation_ms: int | None


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model: its aliases map alias -> version."""

    name: str
    aliases: Mapping[str, int]
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None


class Registry(Protocol):
    """What regpilot reads and writes; MLflow OSS and Databricks adapters implement it.

    `capabilities` says what the registry supports; a call it does not support raises
    Unsupported. `pages_read` counts the pages the last `iter_versions` read.
    """

    capabilities: RegistryCapabilities

    @property
    def pages_read(self) -> int: ...

    def get_run(self, run_id: str) -> RunInfo: ...

    def experiment_name(self, experiment_id: str) -> str | None: ...

    def logged_models(self, run: RunInfo) -> Sequence[LoggedModel]: ...

    def set_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    def get_registered_model(self, name: str) -> RegisteredModel: ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...

    def versions_from_run(self, name: str, run_id: str) -> Sequence[ModelVersion]: ...

    def iter_versions(self, name: str) -> Iterator[ModelVersion]: ...

    def recent_versions(self, since_ms: int) -> Iterator[ModelVersion]: ...

    def unjudged_runs(self, since_ms: int) -> Iterator[RunInfo]: ...

    def create_version(
        self, name: str, source: str, run_id: str, tags: Mapping[str, str], description: str | None
    ) -> ModelVersion: ...

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None: ...

    def set_version_description(self, name: str, version: int, description: str) -> None: ...

    def set_alias(self, name: str, alias: str, version: int) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def transition_stage(
        self, name: str, version: int, stage: str, archive_existing: bool
    ) -> ModelVersion: ...

    def delete_version(self, name: str, version: int) -> None: ...
