"""Misbehaving pyfunc models for the evaluation tests.

They misbehave only when armed (`REGPILOT_TOY_ARMED=1`, passed to the evaluation child through
`evaluate_model(child_env=...)`), so that logging them (which loads the model and predicts on the
input example to validate it) stays quiet. They are pickled by value, so the evaluation child
does not need this test package. `predict` has no type hints: MLflow 3 reads them to infer a
signature and warns about `Any`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import mlflow.pyfunc

#: A `sleep` argument no other process on the machine uses: the leak check looks for it.
SLEEP_MARKER = "61.4242"


def _armed() -> bool:
    return os.environ.get("REGPILOT_TOY_ARMED") == "1"


def _first_column_sign(model_input: Any) -> Any:
    return (model_input.iloc[:, 0] > 0).astype("int64").to_numpy()


class CannotLoad(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        if _armed():
            raise RuntimeError("weights file is corrupt")

    def predict(self, context, model_input, params=None):
        return _first_column_sign(model_input)


class PredictRaises(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def predict(self, context, model_input, params=None):
        if _armed():
            raise ValueError("feature f3 has an unexpected scale")
        return _first_column_sign(model_input)


class Sleeps(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Starts a `sleep` helper when loaded (to prove the whole group dies); predict sleeps 60 s."""

    def load_context(self, context: Any) -> None:
        if _armed():
            helper = subprocess.Popen(["sleep", SLEEP_MARKER])
            pid_file = os.environ.get("REGPILOT_TOY_PIDFILE")
            if pid_file:
                with open(pid_file, "w") as handle:
                    handle.write(f"{os.getpid()} {helper.pid}\n")

    def predict(self, context, model_input, params=None):
        if _armed():
            time.sleep(60)
        return _first_column_sign(model_input)


class Crashes(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def predict(self, context, model_input, params=None):
        if _armed():
            os.kill(os.getpid(), signal.SIGSEGV)
        return _first_column_sign(model_input)
