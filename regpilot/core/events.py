"""Typed webhook payloads: parsed once at the edge, frozen, unknown fields ignored."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
VersionNumber = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}$")]


class PayloadError(ValueError):
    """A body that is not the payload an endpoint expects; `reason` is safe to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class RunCompleted(_Frozen):
    """`POST /webhooks/runs`: a training run finished and may have logged a model."""

    run_id: RunId
    model_name: ModelName | None = None


class MlflowEnvelope(_Frozen):
    """The envelope of every MLflow webhook: `{entity, action, timestamp, data}`."""

    entity: Annotated[str, StringConstraints(max_length=64)]
    action: Annotated[str, StringConstraints(max_length=64)]
    timestamp: Annotated[str, StringConstraints(max_length=64)] | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def event(self) -> str:
        """Return `entity.action`, the name MLflow dispatches on."""
        return f"{self.entity}.{self.action}"


class ModelVersionCreated(_Frozen):
    """Data of `model_version.created`. `run_id` may be null: the stored version has it."""

    name: ModelName
    version: VersionNumber
    source: str | None = None
    run_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


def describe_validation_error(exc: ValidationError) -> str:
    """Return a short, secret-free description of why a payload did not parse."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_model(model: type[_Frozen], data: Any) -> Any:
    """Validate plain data into a frozen payload model, or raise PayloadError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc)) from exc
