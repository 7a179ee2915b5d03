"""The task names and their argument fields: the one place producers and the worker agree on.

A producer that spells a task name wrong claims the delivery and then loses the message (the
worker drops an unregistered task, and the sender's retry is answered "duplicate"), so every
producer sends a `TaskSpec` from here and `tests/unit/test_task_names.py` proves that each spec
is registered on the worker's app with the same argument names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskSpec:
    """A task as producers see it: its registered name and its positional argument names."""

    name: str
    args: tuple[str, ...]
    # Positional argument -> log-context field (`model`, `version`, `run_id`), for log lines.
    log_fields: tuple[str, ...] = ()

    def arguments(self, *values: Any) -> list[Any]:
        """Return the positional arguments for a message, refusing more than the task takes."""
        if len(values) > len(self.args):
            raise TypeError(f"{self.name} takes {len(self.args)} arguments, got {len(values)}")
        return list(values)


# Keyword arguments every delivery-driven task takes (who asked, which delivery, which letter).
DELIVERY_KWARGS: tuple[str, ...] = ("source", "delivery_id", "dead_letter_id")

RUN_COMPLETED = TaskSpec("regpilot.run_completed", ("run_id", "model_name"), ("run_id", "model"))
MODEL_VERSION_CREATED = TaskSpec(
    "regpilot.model_version_created", ("name", "version"), ("model", "version")
)
RECONCILE = TaskSpec("regpilot.reconcile", ("since_hours",))
DATABRICKS_JOB_COMPLETED = TaskSpec(
    "regpilot.databricks_job_completed", ("run_id", "parent_run_id"), ("job_run_id",)
)
DATABRICKS_TRANSITION_REQUEST = TaskSpec(
    "regpilot.databricks_transition_request", ("name", "version", "stage"), ("model", "version")
)
# One decision event to one notification destination (named in the model's policy, so no URL or
# secret ever travels through the broker).
NOTIFY = TaskSpec("regpilot.notify", ("model", "destination", "event"), ("model",))
# Model evaluation (issue 12): minutes of user code, so it runs on its own queue and its own
# workers (`regpilot worker --role evaluate`); celery_config.py routes these by name.

# Measure one candidate on its policy's dataset, then apply its verdict (on the evaluation queue:
# it loads user models and can take minutes). The run path gives run_id and model_uri, the
# version path gives version.
EVALUATE_MODEL = TaskSpec(
    "regpilot.evaluate_model",
    ("name", "run_id", "model_uri", "version"),
    ("model", "run_id", "model_uri", "version"),
)
EVALUATION_TASKS: tuple[TaskSpec, ...] = (EVALUATE_MODEL,)

ALL_TASKS: tuple[TaskSpec, ...] = (
    RUN_COMPLETED,
    MODEL_VERSION_CREATED,
    RECONCILE,
    DATABRICKS_JOB_COMPLETED,
    DATABRICKS_TRANSITION_REQUEST,
    NOTIFY,
    EVALUATE_MODEL,
)
BY_NAME: dict[str, TaskSpec] = {spec.name: spec for spec in ALL_TASKS}


def spec_named(name: str) -> TaskSpec | None:
    """Return the spec of a registered task name (None for a name regpilot does not define)."""
    return BY_NAME.get(name)


def log_fields(name: str, args: Sequence[Any]) -> dict[str, Any]:
    """Return the log-context fields a task's positional arguments fill."""
    spec = BY_NAME.get(name)
    if spec is None:
        return {}
    return dict(zip(spec.log_fields, args, strict=False))
