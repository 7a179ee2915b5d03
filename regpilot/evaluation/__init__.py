"""Model evaluation engine: measure a logged model on a labelled dataset, in a killable child.

A library with plain-data inputs and outputs; it imports nothing else from regpilot, and MLflow,
pandas and scikit-learn only inside the functions (and the child process) that need them.

    from regpilot.evaluation import EvaluationSpec, evaluate_model, measured_checks

    spec = EvaluationSpec("data/holdout.parquet", "label", "classifier",
                          metrics={"accuracy_score": ("min", 0.8)})
    result = evaluate_model("models:/churn/7", spec, tracking_uri="http://mlflow:5000")
    checks = measured_checks(result.measured, spec.metrics)
"""

from regpilot.evaluation.dataset import DatasetError, check_header, dataset_digest
from regpilot.evaluation.decide import (
    Check,
    all_passed,
    champion_check,
    honesty_checks,
    measured_checks,
)
from regpilot.evaluation.runner import (
    EvaluationInfrastructureError,
    evaluate_model,
    warm_forkserver,
)
from regpilot.evaluation.spec import EvaluationResult, EvaluationSpec, StepResult

__all__ = [
    "Check",
    "DatasetError",
    "EvaluationInfrastructureError",
    "EvaluationResult",
    "EvaluationSpec",
    "StepResult",
    "all_passed",
    "champion_check",
    "check_header",
    "dataset_digest",
    "evaluate_model",
    "honesty_checks",
    "measured_checks",
    "warm_forkserver",
]
