"""The registry port: what the workflows need from a model registry, as plain data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class RegistryError(Exception):
    """Base of every error an adapter raises."""


class NotFound(RegistryError):
    """The run, model or version does not exist: permanent, never retried."""


class TransientRegistryError(RegistryError):
    """The registry is unreachable or overloaded (5xx, 429, timeouts): retry later."""


class Unsupported(RegistryError):
    """The operation does not exist on this registry (stages on Unity Catalog)."""


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
    def finished(self) -> bool:
        """Tell whether the run ended successfully."""
        return self.status == "FINISHED"


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
    """What regpilot reads and writes; MLflow OSS and Databricks adapters implement it."""

    supports_stages: bool

    def get_run(self, run_id: str) -> RunInfo: ...

    def logged_models(self, run: RunInfo) -> Sequence[LoggedModel]: ...

    def set_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None: ...

    def get_registered_model(self, name: str) -> RegisteredModel: ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...

    def versions_from_run(self, name: str, run_id: str) -> Sequence[ModelVersion]: ...

    def iter_versions(self, name: str) -> Iterator[ModelVersion]: ...

    def recent_versions(self, since_ms: int) -> Iterator[ModelVersion]: ...

    def unjudged_runs(self, since_ms: int) -> Iterator[RunInfo]: ...

    def create_version(
        self,
        name: str,
        source: str,
        run_id: str,
        tags: Mapping[str, str],
        description: str | None,
    ) -> ModelVersion: ...

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None: ...

    def set_version_description(self, name: str, version: int, description: str) -> None: ...

    def set_alias(self, name: str, alias: str, version: int) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def transition_stage(
        self, name: str, version: int, stage: str, archive_existing: bool
    ) -> ModelVersion: ...

    def delete_version(self, name: str, version: int) -> None: ...
