"""Queue a candidate's evaluation, and the engine call a process that runs evaluations uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.settings import Settings
from regpilot.evaluation import EvaluationResult, EvaluationSpec, evaluate_model
from regpilot.evaluation.runner import StartMethod
from regpilot.queue.names import EVALUATE_MODEL
from regpilot.workflows.context import Evaluate

if TYPE_CHECKING:
    from celery import Celery

#: The MLflow experiment holding the evaluation runs (one per measured model and dataset).
EVALUATION_EXPERIMENT = "regpilot-evaluations"


class EvaluationQueuer:
    """Send `regpilot.evaluate_model` with ids only, carrying the delivery it came from."""

    def __init__(self, celery: Celery, queue: str, source: str, delivery_id: str | None) -> None:
        self.celery = celery
        self.queue = queue
        self.source = source
        self.delivery_id = delivery_id

    def __call__(
        self, name: str, run_id: str | None, model_uri: str | None, version: int | None
    ) -> None:
        """Queue the evaluation; a broker error propagates (the registry task retries)."""
        self.celery.send_task(
            EVALUATE_MODEL.name,
            args=EVALUATE_MODEL.arguments(name, run_id, model_uri, version),
            kwargs={"source": self.source, "delivery_id": self.delivery_id},
            queue=self.queue,
        )


def engine_evaluator(settings: Settings, start_method: StartMethod = "subprocess") -> Evaluate:
    """Return the `Context.evaluate` callable: the engine against this deployment's MLflow.

    `"forkserver"` forks each evaluation from a warm process with MLflow already imported
    (about 1.3x `mlflow.models.evaluate` in-process, against about 4.7x for a cold subprocess;
    regpilot/evaluation/PERF.md), but it cannot run inside Celery's prefork pool (its processes
    are daemonic); workers and the CLI use a subprocess today.
    """
    tracking_uri = settings.mlflow_tracking_uri
    registry_uri = settings.mlflow_registry_uri or None

    def evaluate(
        model_uri: str, spec: EvaluationSpec, run_tags: dict[str, str]
    ) -> EvaluationResult:
        return evaluate_model(
            model_uri,
            spec,
            tracking_uri=tracking_uri,
            registry_uri=registry_uri,
            experiment_name=EVALUATION_EXPERIMENT,
            run_tags=run_tags,
            start_method=start_method,
        )

    return evaluate
