"""Imported once by the evaluation forkserver, so that forked children start warm.

Importing this module imports MLflow, the default evaluator, pandas, scikit-learn, skops
(MLflow 3's default sklearn serialisation; `skops.io` alone takes about a second to import
because it indexes every public sklearn type) and matplotlib's pyplot, and builds MLflow's
package-to-module map that `mlflow.pyfunc.load_model` uses to compare a model's requirements
with what is installed. Never imported by the parent process.
"""

from __future__ import annotations

import contextlib

import mlflow
import mlflow.models
import mlflow.models.evaluation.default_evaluator
import mlflow.pyfunc
import mlflow.sklearn  # noqa: F401
import pandas  # noqa: F401
import sklearn.metrics  # noqa: F401

import regpilot.evaluation.child
import regpilot.evaluation.dataset
import regpilot.evaluation.outputs  # noqa: F401

with contextlib.suppress(ImportError):
    import skops.io  # type: ignore[import-untyped]  # noqa: F401

with contextlib.suppress(Exception):  # the default evaluator draws its plots with pyplot
    import matplotlib.pyplot  # noqa: F401

with contextlib.suppress(Exception):  # a private MLflow helper: best effort only
    from mlflow.utils import requirements_utils

    requirements_utils._init_packages_to_modules_map()  # type: ignore[no-untyped-call]
