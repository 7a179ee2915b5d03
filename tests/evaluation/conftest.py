"""One real `mlflow server` for the evaluation tests, plus tiny datasets and models logged to it.

The server is the embedded stack's (`LocalStack.start_mlflow`: sqlite backend, local artifact
store, one worker, job execution off); it starts on first use and stops at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

SEED = 7
# Given explicitly: MLflow's requirement inference runs a subprocess per model (25 s under load).
REQUIREMENTS = ["mlflow", "scikit-learn", "pandas"]
FEATURES = [f"f{i}" for i in range(8)]


@pytest.fixture(scope="session")
def eval_tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow tracking server for this test folder (the embedded stack's own start)."""
    from regpilot.cli.stack import LocalStack, Secrets

    state = tmp_path_factory.mktemp("eval-mlflow")
    stack = LocalStack(state)
    try:
        yield stack.start_mlflow(Secrets.load_or_create(state))
    finally:
        stack.stop()


@dataclass(frozen=True)
class Data:
    """Classification data: a CSV and a Parquet of the same 10,000 rows, plus a regression CSV."""

    csv: Path
    small_csv: Path
    tiny_csv: Path
    parquet: Path
    regression_csv: Path
    frame: Any
    regression_frame: Any


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    import pandas as pd
    from sklearn.datasets import make_classification, make_regression

    folder = tmp_path_factory.mktemp("eval-data")
    x, y = make_classification(
        n_samples=10_000, n_features=8, n_informative=5, random_state=SEED, class_sep=1.5
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = y
    frame.to_csv(folder / "clf.csv", index=False)
    frame.to_parquet(folder / "clf.parquet", index=False)
    frame.head(1_000).to_csv(folder / "small.csv", index=False)
    frame.head(50).to_csv(folder / "tiny.csv", index=False)
    xr, yr = make_regression(n_samples=2_000, n_features=5, noise=5.0, random_state=SEED)
    regression = pd.DataFrame(xr, columns=[f"r{i}" for i in range(5)])
    regression["target"] = yr
    regression.to_csv(folder / "reg.csv", index=False)
    return Data(
        folder / "clf.csv",
        folder / "small.csv",
        folder / "tiny.csv",
        folder / "clf.parquet",
        folder / "reg.csv",
        frame,
        regression,
    )


@pytest.fixture(scope="session")
def forkserver_ready() -> None:
    """The evaluation forkserver, started and done with its preload imports."""
    from regpilot.evaluation import warm_forkserver

    warm_forkserver(wait=True)


@pytest.fixture(scope="session")
def logged(eval_tracking_uri: str, data: Data) -> dict[str, str]:
    """Models logged to the real server, by role -> model URI."""
    import cloudpickle
    import mlflow

    from regpilot.evaluation import warm_forkserver
    from tests.evaluation import toy_models

    warm_forkserver(wait=False)  # its preload imports overlap with the logging below
    cloudpickle.register_pickle_by_value(toy_models)  # the child must not need the tests
    # Point MLflow at this folder's server only while logging: later tests in this process
    # (any order under xdist) train on the session's server.
    previous_uri, previous_env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(eval_tracking_uri)
    try:
        return _log_models(mlflow, data)
    finally:
        mlflow.set_tracking_uri(previous_uri)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env


def _log_models(mlflow: Any, data: Data) -> dict[str, str]:
    import mlflow.pyfunc
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from tests.evaluation import toy_models

    mlflow.set_experiment("eval-test-models")
    x = data.frame[FEATURES]
    y = data.frame["label"]
    example = x.head(5)
    uris: dict[str, str] = {}
    with mlflow.start_run(run_name="models"):
        good = LogisticRegression(max_iter=500).fit(x, y)
        mlflow.log_metric("val_accuracy", 0.999)  # a self-reported number to be checked
        uris["good"] = mlflow.sklearn.log_model(
            good,
            name="good",
            input_example=example,
            signature=infer_signature(example, good.predict(example)),
            pip_requirements=REQUIREMENTS,
        ).model_uri
        xr = data.regression_frame.drop(columns="target")
        regressor = LinearRegression().fit(xr, data.regression_frame["target"])
        uris["regressor"] = mlflow.sklearn.log_model(
            regressor,
            name="regressor",
            input_example=xr.head(5),
            signature=infer_signature(xr.head(5), regressor.predict(xr.head(5))),
            pip_requirements=REQUIREMENTS,
        ).model_uri
        # A model whose signature promises two named output columns it never returns.
        uris["lying_signature"] = mlflow.sklearn.log_model(
            good,
            name="lying_signature",
            input_example=example,
            signature=infer_signature(
                example,
                _two_columns(good.predict(example)),
            ),
            pip_requirements=["scikit-learn==1.0.2"],  # and trained "elsewhere"
        ).model_uri
        signature = infer_signature(example, y.head(5).to_numpy())
        for role, model in {
            "cannot_load": toy_models.CannotLoad(),
            "predict_raises": toy_models.PredictRaises(),
            "sleeps": toy_models.Sleeps(),
            "crashes": toy_models.Crashes(),
        }.items():
            uris[role] = mlflow.pyfunc.log_model(
                name=role,
                python_model=model,
                input_example=example,
                signature=signature,
                pip_requirements=[],
            ).model_uri
    return uris


def _two_columns(predictions: Any) -> Any:
    import pandas as pd

    return pd.DataFrame({"label": predictions, "probability": predictions.astype(float)})


@pytest.fixture(autouse=True)
def point_mlflow_at_the_engine_server(request: pytest.FixtureRequest) -> None:
    """Point MLflow at this folder's server for a test that uses it (artifact reads need it).

    The root conftest puts the process's tracking URI back after each test.
    """
    if "eval_tracking_uri" in request.fixturenames:
        import mlflow

        mlflow.set_tracking_uri(request.getfixturevalue("eval_tracking_uri"))
