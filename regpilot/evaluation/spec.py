"""Plain-data inputs and outputs of the evaluation engine (no MLflow, no pandas).

`EvaluationSpec` says what to measure a model on; `EvaluationResult` is what came out. Both
round-trip through JSON (`as_dict` / `from_dict`), so a result can be cached under
(model URI or version, dataset digest) and handed between processes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

ModelType = Literal["classifier", "regressor"]
EnvManager = Literal["local", "virtualenv", "uv"]
BoundKind = Literal["min", "max"]
FailureKind = Literal["timeout", "crash", "model", "dataset", "config"]

MODEL_TYPES: tuple[str, ...] = ("classifier", "regressor")
ENV_MANAGERS: tuple[str, ...] = ("local", "virtualenv", "uv")
BOUND_KINDS: tuple[str, ...] = ("min", "max")
FAILURE_KINDS: tuple[str, ...] = ("timeout", "crash", "model", "dataset", "config")


@dataclass(frozen=True)
class EvaluationSpec:
    """What to evaluate a model on.

    `metrics` maps a metric name, exactly as `mlflow.models.evaluate` reports it, to a bound:
    `("min", 0.8)` means the measured value must be at least 0.8, `("max", 0.3)` at most 0.3.
    `max_rows` caps the rows used (a deterministic hash sample, see `dataset.sample_rows`).
    `timeout_seconds` covers the whole child process, from its start (interpreter and imports)
    to its result.
    """

    dataset: str
    targets: str
    model_type: ModelType
    metrics: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    max_rows: int = 100_000
    timeout_seconds: float = 300
    env_manager: EnvManager = "local"

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ValueError("EvaluationSpec.dataset must be a path or URI")
        if not self.targets:
            raise ValueError("EvaluationSpec.targets must name the label column")
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model_type must be one of {MODEL_TYPES}, not {self.model_type!r}")
        if self.env_manager not in ENV_MANAGERS:
            raise ValueError(f"env_manager must be one of {ENV_MANAGERS}, not {self.env_manager!r}")
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int):
            raise ValueError("max_rows must be an integer")
        if self.max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        if not (self.timeout_seconds > 0 and math.isfinite(self.timeout_seconds)):
            raise ValueError("timeout_seconds must be a positive number")
        normalised: dict[str, tuple[str, float]] = {}
        for name, bound in self.metrics.items():
            if len(bound) != 2:
                raise ValueError(f'metric {name!r}: bound must be ("min"|"max", number)')
            kind, value = bound[0], bound[1]
            if kind not in BOUND_KINDS:
                raise ValueError(
                    f"metric {name!r}: bound kind must be 'min' or 'max', not {kind!r}"
                )
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"metric {name!r}: bound must be a finite number")
            normalised[str(name)] = (kind, number)
        object.__setattr__(self, "metrics", normalised)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "targets": self.targets,
            "model_type": self.model_type,
            "metrics": {name: [kind, value] for name, (kind, value) in self.metrics.items()},
            "max_rows": self.max_rows,
            "timeout_seconds": self.timeout_seconds,
            "env_manager": self.env_manager,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationSpec:
        metrics = {
            str(name): (str(bound[0]), float(bound[1]))
            for name, bound in dict(data.get("metrics") or {}).items()
        }
        return cls(
            dataset=str(data["dataset"]),
            targets=str(data["targets"]),
            model_type=cast(ModelType, data["model_type"]),
            metrics=metrics,
            max_rows=int(data.get("max_rows", 100_000)),
            timeout_seconds=float(data.get("timeout_seconds", 300)),
            env_manager=cast(EnvManager, data.get("env_manager", "local")),
        )


@dataclass(frozen=True)
class StepResult:
    """One step of an evaluation (load, predict_example, signature, evaluate, log...)."""

    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        return cls(name=str(data["name"]), passed=bool(data["passed"]), detail=str(data["detail"]))


@dataclass(frozen=True)
class EvaluationResult:
    """What one evaluation measured, or why it could not measure.

    `failure` is a one-line reason when the model could not be measured (it failed to load,
    raised in predict, crashed or timed out the child, the dataset was unusable); `failure_kind`
    says which (`timeout`, `crash`, `model`, `dataset`, `config`). A result with `failure` set
    is FAILED. A result without `failure` may still have a failed step (the example's output
    did not match the signature): `ok` is true only when nothing failed.
    `measured` holds the metrics exactly as `mlflow.models.evaluate` named them (finite numbers
    only). `timings` holds seconds: `startup` (from launch until the child's imports are done;
    `imports` is the part spent importing MLflow and pandas, near zero in forkserver mode),
    `dataset`, `load` (download and load), `predict` (the logged input example), `metrics`
    (`mlflow.models.evaluate`, which also predicts on the dataset and logs its metrics and
    plots), `logging` (run creation, tags, the result JSON), `total` (wall time seen by the
    caller) and `overhead` (total minus startup and the steps: process exit, clean-up).
    """

    model_uri: str
    loaded: bool
    predicted_example: bool | None
    measured: dict[str, float]
    steps: list[StepResult]
    evaluation_run_id: str | None
    dataset_digest: str | None
    timings: dict[str, float]
    failure: str | None
    failure_kind: FailureKind | None = None
    dataset_rows: int | None = None

    @property
    def ok(self) -> bool:
        """True when measured and every step passed."""
        return self.failure is None and all(step.passed for step in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_uri": self.model_uri,
            "loaded": self.loaded,
            "predicted_example": self.predicted_example,
            "measured": dict(self.measured),
            "steps": [step.as_dict() for step in self.steps],
            "evaluation_run_id": self.evaluation_run_id,
            "dataset_digest": self.dataset_digest,
            "timings": dict(self.timings),
            "failure": self.failure,
            "failure_kind": self.failure_kind,
            "dataset_rows": self.dataset_rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationResult:
        predicted = data.get("predicted_example")
        failure = data.get("failure")
        kind = data.get("failure_kind")
        if kind is not None and kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure_kind {kind!r}")
        run_id = data.get("evaluation_run_id")
        digest = data.get("dataset_digest")
        rows = data.get("dataset_rows")
        return cls(
            model_uri=str(data["model_uri"]),
            loaded=bool(data["loaded"]),
            predicted_example=None if predicted is None else bool(predicted),
            measured={str(k): float(v) for k, v in dict(data.get("measured") or {}).items()},
            steps=[StepResult.from_dict(step) for step in data.get("steps") or []],
            evaluation_run_id=None if run_id is None else str(run_id),
            dataset_digest=None if digest is None else str(digest),
            timings={str(k): float(v) for k, v in dict(data.get("timings") or {}).items()},
            failure=None if failure is None else str(failure),
            failure_kind=cast(FailureKind | None, kind),
            dataset_rows=None if rows is None else int(rows),
        )

    @classmethod
    def failed(
        cls,
        model_uri: str,
        failure: str,
        kind: FailureKind,
        *,
        steps: list[StepResult] | None = None,
        timings: Mapping[str, float] | None = None,
        evaluation_run_id: str | None = None,
        loaded: bool = False,
    ) -> EvaluationResult:
        """A FAILED result with a one-line reason."""
        return cls(
            model_uri=model_uri,
            loaded=loaded,
            predicted_example=None,
            measured={},
            steps=list(steps or []),
            evaluation_run_id=evaluation_run_id,
            dataset_digest=None,
            timings=dict(timings or {}),
            failure=one_line(failure),
            failure_kind=kind,
        )


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace to one line and cut to `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
