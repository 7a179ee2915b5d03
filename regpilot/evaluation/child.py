"""The evaluation child process: loads, predicts, measures and logs one model.

Started by `runner.evaluate_model`, either as `python -m regpilot.evaluation.child REQUEST.json`
or, in forkserver mode, through `forkserver_entry` in a process forked from a server that has
MLflow preloaded. It reads the request JSON, does the work inside one MLflow run, and writes a
reply JSON (atomically) to `request["result_path"]`:

    {"result": EvaluationResult.as_dict(), "infrastructure_error": str | None,
     "clock": {"entry": t, "ready": t}}

It appends one JSON line per step start/end (and the run id once created) to
`request["progress_path"]`, so the parent can tell which step a killed child was in and mark its
MLflow run KILLED.

Infrastructure vs model failures: a failure is "infrastructure" (the parent raises
`EvaluationInfrastructureError`, the caller may retry) when a step that only talks to MLflow or
storage (`connect`, `dataset`, `download`, `log`, and MLflow's own calls inside `evaluate`) fails
with a connection-level error (connection refused/reset, timeout, DNS, too many retries) or an
MLflow HTTP answer of 429/5xx. Anything the model's own code raises (`load`, `predict_example`,
and any non-MLflow-REST error inside `evaluate`) is a model failure, as are 4xx answers such as
"model not found".
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from regpilot.evaluation.spec import (
    EvaluationResult,
    EvaluationSpec,
    FailureKind,
    StepResult,
    one_line,
)

RESULT_ARTIFACT = "regpilot_evaluation.json"
EVALUATED_MODEL_TAG = "regpilot_evaluated_model"

# Exception class names (anywhere in an exception's MRO or its cause/context chain) that mean the
# network or a storage service failed, not the model.
_CONNECTION_ERROR_NAMES = frozenset(
    {
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "BrokenPipeError",
        "TimeoutError",
        "Timeout",
        "ConnectTimeout",
        "ReadTimeout",
        "MaxRetryError",
        "NewConnectionError",
        "ProtocolError",
        "RetryError",
        "RemoteDisconnected",
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "gaierror",
    }
)


# MLflow error codes that mean "try again later".
_TRANSIENT_ERROR_CODES = frozenset(
    {
        "TEMPORARILY_UNAVAILABLE",
        "REQUEST_LIMIT_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "DEADLINE_EXCEEDED",
    }
)


class StepFailed(Exception):
    """A step failed in a way that ends the evaluation (not infrastructure)."""

    def __init__(self, kind: FailureKind, reason: str) -> None:
        super().__init__(reason)
        self.kind: FailureKind = kind
        self.reason = reason


class InfrastructureFailure(Exception):
    """MLflow or storage could not be reached: the parent raises EvaluationInfrastructureError."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _http_status(exc: BaseException) -> int | None:
    getter = getattr(exc, "get_http_status_code", None)
    if callable(getter):
        try:
            return int(getter())
        except Exception:
            return None
    return None


def is_infrastructure(exc: BaseException, *, io_step: bool) -> bool:
    """Is `exc` MLflow/storage being unreachable or failing (see module doc)?

    `io_step`: the step only talks to MLflow or storage, so any connection-level error counts.
    Otherwise (the model's code may run) only MLflow's own REST failures count.
    """
    for error in _chain(exc):
        names = {cls.__name__ for cls in type(error).__mro__}
        is_mlflow = "MlflowException" in names
        if is_mlflow and str(getattr(error, "message", error)).startswith("API request to "):
            return True
        if is_mlflow:
            code = str(getattr(error, "error_code", ""))
            if code in _TRANSIENT_ERROR_CODES:
                return True
            status = _http_status(error)
            # A RestException is an answer from the server; a bare MlflowException defaults to
            # INTERNAL_ERROR (500) even when MLflow's client code raised it locally.
            if "RestException" in names and status is not None and (status == 429 or status >= 500):
                return True
        if io_step and names & _CONNECTION_ERROR_NAMES:
            return True
    return False


def describe_exception(exc: BaseException) -> str:
    """`ExceptionType: first line of the message`."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return one_line(f"{type(exc).__name__}: {message}" if message else type(exc).__name__, 240)


class _RequirementMismatches(logging.Handler):
    """Collects MLflow's "model requirements do not match this environment" lines while loading."""

    LOGGER = "mlflow.utils.requirements_utils"

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        for line in record.getMessage().splitlines():
            if line.startswith(" - "):
                self.found.append(line[3:].strip())

    def __enter__(self) -> _RequirementMismatches:
        logging.getLogger(self.LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)


class Evaluation:
    """One evaluation, step by step. `run()` returns the reply dict."""

    def __init__(self, request: Mapping[str, Any], entry: float, ready: float) -> None:
        self.request = request
        self.spec = EvaluationSpec.from_dict(request["spec"])
        self.model_uri: str = request["model_uri"]
        self.workdir = Path(request["workdir"])
        self.progress_path = request.get("progress_path")
        self.clock = {"entry": entry, "ready": ready}
        self.steps: list[StepResult] = []
        self.timings: dict[str, float] = {}
        self.measured: dict[str, float] = {}
        self.loaded = False
        self.predicted_example: bool | None = None
        self.run_id: str | None = None
        self.digest: str | None = None
        self.rows: int | None = None
        self.failure: str | None = None
        self.failure_kind: FailureKind | None = None

    # -- bookkeeping --------------------------------------------------------------------------

    def progress(self, **event: Any) -> None:
        if not self.progress_path:
            return
        with open(self.progress_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"t": time.time(), **event}) + "\n")

    @contextmanager
    def timed(self, bucket: str, step: str) -> Iterator[None]:
        self.progress(step=step, state="start")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[bucket] = self.timings.get(bucket, 0.0) + time.perf_counter() - start
            self.progress(step=step, state="end")

    def result(self) -> EvaluationResult:
        return EvaluationResult(
            model_uri=self.model_uri,
            loaded=self.loaded,
            predicted_example=self.predicted_example,
            measured=dict(self.measured),
            steps=list(self.steps),
            evaluation_run_id=self.run_id,
            dataset_digest=self.digest,
            timings={k: round(v, 6) for k, v in self.timings.items()},
            failure=self.failure,
            failure_kind=self.failure_kind,
            dataset_rows=self.rows,
        )

    def fail(self, step: str, kind: FailureKind, reason: str) -> StepFailed:
        self.steps.append(StepResult(step, False, one_line(reason)))
        return StepFailed(kind, one_line(reason))

    # -- the steps ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        import mlflow

        infrastructure: str | None = None
        try:
            self.connect()
            try:
                mlflow.start_run(run_id=self.run_id)
            except Exception as exc:
                self.guard("connect", exc, io_step=True)
                raise self.fail(
                    "connect", "config", f"cannot start the run: {describe_exception(exc)}"
                ) from exc
            try:
                try:
                    self.measure()
                except StepFailed as failed:
                    self.failure, self.failure_kind = failed.reason, failed.kind
                self.log()
            finally:
                if mlflow.active_run() is not None:  # log() did not end it: infrastructure
                    try:
                        mlflow.end_run(status="FAILED")
                    except Exception:
                        pass
        except InfrastructureFailure as exc:
            infrastructure = str(exc)
        except StepFailed as failed:  # connect failed for a non-infrastructure reason
            self.failure, self.failure_kind = failed.reason, failed.kind
        return {
            "result": self.result().as_dict(),
            "infrastructure_error": infrastructure,
            "clock": self.clock,
        }

    def guard(self, step: str, exc: BaseException, *, io_step: bool) -> None:
        if is_infrastructure(exc, io_step=io_step):
            self.steps.append(StepResult(step, False, describe_exception(exc)))
            raise InfrastructureFailure(f"{step}: {describe_exception(exc)}") from exc

    def connect(self) -> None:
        """Find or create the experiment and create the evaluation run (tags set at creation)."""
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(self.request["tracking_uri"])
        if self.request.get("registry_uri"):
            mlflow.set_registry_uri(self.request["registry_uri"])
        with self.timed("logging", "connect"):
            try:
                client = MlflowClient()
                name = self.request["experiment_name"]
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    try:
                        experiment_id = client.create_experiment(name)
                    except Exception:  # another worker created it first
                        experiment = client.get_experiment_by_name(name)
                        if experiment is None:
                            raise
                        experiment_id = experiment.experiment_id
                elif experiment.lifecycle_stage != "active":
                    raise self.fail(
                        "connect", "config", f"experiment {name!r} is deleted; restore or rename it"
                    )
                else:
                    experiment_id = experiment.experiment_id
                tags = {str(k): str(v) for k, v in dict(self.request.get("run_tags") or {}).items()}
                tags[EVALUATED_MODEL_TAG] = self.model_uri
                tags.setdefault("mlflow.runName", "regpilot-evaluation")
                run = client.create_run(experiment_id, tags=tags)
            except StepFailed:
                raise
            except Exception as exc:
                self.guard("connect", exc, io_step=True)
                raise self.fail(
                    "connect",
                    "config",
                    f"cannot create the evaluation run: {describe_exception(exc)}",
                ) from exc
        self.run_id = run.info.run_id
        self.progress(run_id=self.run_id)
        self.steps.append(StepResult("connect", True, f"evaluation run {self.run_id}"))

    def measure(self) -> None:
        frame = self.read_dataset()
        model, local = self.load_model()
        self.check_example(model, local)
        self.evaluate(model, frame)

    def read_dataset(self) -> Any:
        from regpilot.evaluation.dataset import DatasetError, load_dataset

        with self.timed("dataset", "dataset"):
            try:
                loaded = load_dataset(
                    self.spec.dataset,
                    self.spec.targets,
                    self.spec.max_rows,
                    self.workdir / "dataset",
                )
            except DatasetError as exc:
                raise self.fail("dataset", "dataset", str(exc)) from exc
            except Exception as exc:
                self.guard("dataset", exc, io_step=True)
                raise self.fail(
                    "dataset",
                    "dataset",
                    f"dataset {self.spec.dataset!r}: {describe_exception(exc)}",
                ) from exc
        if self.spec.model_type == "classifier":
            labels = int(loaded.frame[self.spec.targets].nunique())
            if labels < 2:
                raise self.fail(
                    "dataset",
                    "dataset",
                    f"dataset {self.spec.dataset!r}: a classifier needs at least two distinct "
                    f"{self.spec.targets!r} values in the rows used, found {labels}",
                )
        self.digest, self.rows = loaded.digest, loaded.rows_used
        capped = "" if loaded.rows_used == loaded.rows_total else f" of {loaded.rows_total}"
        self.steps.append(
            StepResult("dataset", True, f"{loaded.rows_used}{capped} rows, digest {loaded.digest}")
        )
        return loaded.frame

    def load_model(self) -> tuple[Any, str]:
        import mlflow.artifacts
        import mlflow.pyfunc

        from regpilot.evaluation.dataset import is_remote, local_path

        with self.timed("load", "download"):
            try:
                if is_remote(self.model_uri):
                    local = mlflow.artifacts.download_artifacts(
                        artifact_uri=self.model_uri, dst_path=str(self.workdir / "model")
                    )
                else:
                    local = str(local_path(self.model_uri))
                    if not Path(local).exists():
                        raise FileNotFoundError(f"no model at {local}")
            except Exception as exc:
                self.guard("download", exc, io_step=True)
                raise self.fail(
                    "load", "model", f"cannot download the model: {describe_exception(exc)}"
                ) from exc
        mismatches = _RequirementMismatches()
        with self.timed("load", "load"), mismatches:
            try:
                if self.spec.env_manager == "local":
                    model = mlflow.pyfunc.load_model(local)
                else:
                    # MLflow builds (or reuses) a virtualenv/uv environment from the model's
                    # logged requirements and serves the model from it; predictions go to that
                    # scoring server, which is in this process group and dies with it.
                    from mlflow.pyfunc import _load_model_or_server

                    model = _load_model_or_server(local, self.spec.env_manager)
            except Exception as exc:
                if self.spec.env_manager == "local":
                    reason = f"model failed to load: {describe_exception(exc)}"
                else:  # one call builds the environment and starts the model server in it
                    reason = (
                        f"model could not be served from a {self.spec.env_manager} environment "
                        f"(building it or loading the model failed): {describe_exception(exc)}"
                    )
                raise self.fail("load", "model", reason) from exc
        self.loaded = True
        flavor = getattr(model, "loader_module", None) or "pyfunc"
        detail = f"loaded ({flavor}, env {self.spec.env_manager})"
        if mismatches.found:
            detail += "; requirements differ from this environment: " + ", ".join(mismatches.found)
        self.steps.append(StepResult("load", True, one_line(detail)))
        return model, local

    def check_example(self, model: Any, local: str) -> None:
        if not self.request.get("logged_example_check", True):
            return
        from regpilot.evaluation.outputs import check_output, describe_output, describe_schema

        meta = model.metadata
        with self.timed("predict", "predict_example"):
            try:
                example = meta.load_input_example(local)
                params = meta.load_input_example_params(local)
            except Exception as exc:
                raise self.fail(
                    "predict_example",
                    "model",
                    f"the logged input example cannot be read: {describe_exception(exc)}",
                ) from exc
            if example is None:
                self.steps.append(
                    StepResult("predict_example", True, "no input example logged: not predicted")
                )
                return
            try:
                output = model.predict(example, params=params) if params else model.predict(example)
            except Exception as exc:
                self.predicted_example = False
                raise self.fail(
                    "predict_example",
                    "model",
                    f"predict on the logged input example raised {describe_exception(exc)}",
                ) from exc
        try:
            rows = describe_output(example).rows
        except Exception:
            rows = None
        self.steps.append(StepResult("predict_example", True, f"predicted {rows} example row(s)"))
        schema = describe_schema(meta.signature.outputs if meta.signature is not None else None)
        if schema is None:
            self.predicted_example = True
            self.steps.append(
                StepResult("signature", True, "no output signature logged: not checked")
            )
            return
        try:
            passed, detail = check_output(schema, describe_output(output), rows)
        except Exception as exc:  # an output we cannot describe
            passed, detail = False, f"cannot compare the output: {describe_exception(exc)}"
        self.predicted_example = passed
        self.steps.append(StepResult("signature", passed, detail))

    def evaluate(self, model: Any, frame: Any) -> None:
        import math

        import mlflow.models

        with self.timed("metrics", "evaluate"):
            try:
                evaluate: Any = mlflow.models.evaluate
                outcome = evaluate(
                    model,
                    data=frame,
                    targets=self.spec.targets,
                    model_type=self.spec.model_type,
                    evaluators=["default"],
                )
            except Exception as exc:
                self.guard("evaluate", exc, io_step=False)
                raise self.fail(
                    "evaluate", "model", f"mlflow.models.evaluate raised {describe_exception(exc)}"
                ) from exc
        dropped: list[str] = []
        for name, value in outcome.metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                dropped.append(str(name))
                continue
            if math.isfinite(number):
                self.measured[str(name)] = number
            else:
                dropped.append(str(name))
        detail = f"{len(self.measured)} metrics on {self.rows} rows"
        if dropped:
            detail += f" (not finite, dropped: {', '.join(sorted(dropped))})"
        self.steps.append(StepResult("evaluate", True, detail))

    def log(self) -> None:
        """Tag the run, attach the result JSON and end the run (FINISHED or FAILED)."""
        import mlflow

        failed = self.failure is not None
        with self.timed("logging", "log"):
            try:
                tags = {"regpilot_status": "failed" if failed else "measured"}
                if self.digest:
                    tags["regpilot_dataset_digest"] = self.digest
                if self.failure:
                    tags["regpilot_failure"] = self.failure[:250]
                mlflow.set_tags(tags)
                self.steps.append(StepResult("log", True, f"result logged as {RESULT_ARTIFACT}"))
                mlflow.log_dict(self.result().as_dict(), RESULT_ARTIFACT)
                mlflow.end_run(status="FAILED" if failed else "FINISHED")
            except Exception as exc:
                self.steps.pop()
                self.guard("log", exc, io_step=True)
                self.steps.append(
                    StepResult("log", False, f"cannot log the result: {describe_exception(exc)}")
                )


def _apply_defaults(request: Mapping[str, Any]) -> None:
    for key, value in dict(request.get("env_defaults") or {}).items():
        os.environ.setdefault(str(key), str(value))
    os.environ["MLFLOW_TRACKING_URI"] = str(request["tracking_uri"])


def _write_reply(path: str, reply: Mapping[str, Any]) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(reply, handle)
    os.replace(temporary, path)


def run_request(request_path: str, entry: float) -> int:
    """Do the evaluation described by the request file; 0 when a reply was written."""
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    _apply_defaults(request)
    try:
        # The imports are the start-up cost that `timings["startup"]` measures.
        import mlflow.models
        import mlflow.pyfunc  # noqa: F401
        import pandas  # noqa: F401

        ready = time.time()
        reply = Evaluation(request, entry, ready).run()
    except BaseException as exc:  # last resort: still answer with one line
        traceback.print_exc()
        reply = {
            "result": EvaluationResult.failed(
                request.get("model_uri", "?"),
                f"evaluation process error: {describe_exception(exc)}",
                "crash",
            ).as_dict(),
            "infrastructure_error": None,
            "clock": {"entry": entry},
        }
        _write_reply(request["result_path"], reply)
        return 1
    _write_reply(request["result_path"], reply)
    return 0


def forkserver_entry(request_path: str) -> None:
    """Target of the forkserver-mode process: new process group, output to the log file."""
    entry = time.time()
    os.setsid()  # so the parent can kill this process and everything it starts at once
    with open(request_path, encoding="utf-8") as handle:
        log_path = json.load(handle)["log_path"]
    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    sys.exit(run_request(request_path, entry))


def main(argv: list[str] | None = None) -> int:
    entry = time.time()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m regpilot.evaluation.child REQUEST.json", file=sys.stderr)
        return 2
    import faulthandler

    faulthandler.enable()
    return run_request(args[0], entry)


if __name__ == "__main__":
    sys.exit(main())
