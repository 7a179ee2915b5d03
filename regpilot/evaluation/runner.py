"""Evaluate a logged model in a child process that can be killed.

`evaluate_model` measures a model on a labelled dataset with MLflow's default evaluator, in a
child process so that a model that hangs, crashes or eats memory cannot take the caller with it.
The child (see `child.py`):

1. finds or creates `experiment_name` and creates an MLflow run there, tagged with `run_tags`
   and `regpilot_evaluated_model=<model_uri>`;
2. reads the dataset (`dataset.load_dataset`: CSV/Parquet, local or any MLflow-downloadable URI,
   capped to `max_rows` by a deterministic hash sample) and fingerprints it;
3. downloads the model and loads it with `mlflow.pyfunc.load_model`; with
   `env_manager="virtualenv"` or `"uv"` it uses MLflow's `mlflow.pyfunc._load_model_or_server`
   (what `mlflow.models.evaluate(..., env_manager=...)` does): MLflow builds the environment from
   the model's logged requirements and serves the model from it, and predictions go to that
   server (a private MLflow API; only `local` is exercised by this package's tests);
4. predicts on the model's own logged input example (if any) and checks the output against the
   logged output signature (if any; see `outputs.py` for what "matches" means);
5. runs `mlflow.models.evaluate(model, data=df, targets=..., model_type=...,
   evaluators=["default"])` inside the run, so the MLflow UI shows the measured metrics and plots;
6. tags the run (`regpilot_status`, `regpilot_dataset_digest`, `regpilot_failure`), logs the full
   result as the artifact `regpilot_evaluation.json` and ends the run FINISHED (or FAILED).

Metric names (`EvaluationResult.measured`) are exactly MLflow 3.17.2's default evaluator's:

* classifier, binary: `accuracy_score`, `precision_score`, `recall_score`, `f1_score`,
  `true_positives`, `true_negatives`, `false_positives`, `false_negatives`, `example_count`,
  `score` (the sklearn estimator's own `score()`), and, when the model has `predict_proba`,
  `roc_auc`, `precision_recall_auc`, `log_loss`;
* classifier, multiclass: `accuracy_score`, `precision_score`, `recall_score`, `f1_score`
  (weighted), `example_count`, `score`, and with `predict_proba` `roc_auc`, `log_loss`;
* regressor: `mean_squared_error`, `root_mean_squared_error`, `mean_absolute_error`,
  `mean_absolute_percentage_error`, `max_error`, `r2_score`, `mean_on_target`, `sum_on_target`,
  `example_count`, `score`.

Notes on MLflow 3.17.2's default evaluator: for an sklearn-flavoured model it calls the raw
estimator's `predict`/`predict_proba` (not the pyfunc wrapper, so no schema enforcement on the
dataset; the input-example step above goes through pyfunc); `score` is the estimator's own
`score()`; it logs a bogus "model type looks like None" warning for integer 0/1 labels; for a
binary classifier most of its time goes to drawing five matplotlib plots (see PERF.md); it sets
the process's active model (harmless in the child).

Failures: a model that fails to load, raises in predict, or crashes the child (non-zero exit,
signal, out of memory) gives a FAILED `EvaluationResult` (`failure` is one line), never an
exception. When `spec.timeout_seconds` passes (counted from the child's start, imports
included), the child's whole process group is killed with SIGKILL and the result is FAILED
with `failure="evaluation timed out after Ns"`; its MLflow run is marked KILLED. Only when MLflow
(or the dataset's storage) cannot be reached does `evaluate_model` raise
`EvaluationInfrastructureError`, so the caller can retry: before starting the child it asks an
http(s) tracking server's `/health`, and the child reports connection-level failures and MLflow
HTTP 429/5xx answers in the steps that talk to MLflow (see `child.is_infrastructure`).

Start methods: `"subprocess"` (default) runs `python -m regpilot.evaluation.child`; every
evaluation pays the interpreter start and `import mlflow` (about 2.5 s here, see PERF.md).
`"forkserver"` forks the child from a multiprocessing forkserver that has MLflow, sklearn and
pandas preloaded (`warm_forkserver()` starts it ahead of time), so a child starts in
milliseconds. The child calls `setsid()` first, so killing its process group works the same.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from regpilot.evaluation.spec import (
    EvaluationResult,
    EvaluationSpec,
    FailureKind,
    StepResult,
    one_line,
)

StartMethod = Literal["subprocess", "forkserver"]

#: Modules the forkserver imports once, so forked children start warm (see `_preload`).
FORKSERVER_PRELOAD: tuple[str, ...] = ("regpilot.evaluation._preload",)

#: Set in the child's environment unless the caller's environment already sets them: MLflow's
#: own defaults retry a dead server for minutes, which would turn an outage into a timeout.
DEFAULT_CHILD_ENV: dict[str, str] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "GIT_PYTHON_REFRESH": "quiet",
}

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_POLL_SECONDS = 0.02


class EvaluationInfrastructureError(RuntimeError):
    """MLflow or the dataset's storage could not be reached; nothing was judged. Retry later."""


@dataclass
class _Outcome:
    timed_out: bool
    returncode: int | None


def check_tracking_server(tracking_uri: str, timeout: float = 5.0) -> None:
    """Raise EvaluationInfrastructureError when an http(s) tracking server does not answer.

    Asks `<tracking_uri>/health`. Other schemes (`databricks`, `sqlite:`, paths) and answers
    that are not server errors (401, 404 behind a proxy, TLS set up for MLflow only) pass: the
    child finds out for certain.
    """
    if urlparse(tracking_uri).scheme not in ("http", "https"):
        return
    url = tracking_uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read(64)
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise EvaluationInfrastructureError(
                f"MLflow tracking server {tracking_uri} answered {exc.code} on /health"
            ) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            return
        raise EvaluationInfrastructureError(
            f"MLflow tracking server {tracking_uri} is unreachable: {exc.reason}"
        ) from exc
    except (OSError, TimeoutError) as exc:
        raise EvaluationInfrastructureError(
            f"MLflow tracking server {tracking_uri} is unreachable: {exc}"
        ) from exc


def _forkserver_context() -> Any:
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(FORKSERVER_PRELOAD))
    return context


def _noop() -> None:
    """Target of the warm-up process: returns at once."""


def warm_forkserver(wait: bool = True) -> None:
    """Start the forkserver (MLflow preloaded) now rather than at the first evaluation.

    With `wait`, also fork one no-op process, which returns only once the forkserver has
    finished its preload imports. Preloading only applies if this process has not started a
    forkserver already. Call it once per worker process (e.g. on Celery's worker_process_init).
    """
    from multiprocessing import forkserver

    context = _forkserver_context()
    forkserver.ensure_running()
    if wait:
        process = context.Process(target=_noop, name="regpilot-evaluation-warmup")
        process.start()
        process.join()


def _kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid` (or just `pid` if it leads none)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
            return
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _sweep_group(pgid: int) -> None:
    """SIGKILL whatever is left in process group `pgid` (e.g. a model's own subprocesses)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in {**DEFAULT_CHILD_ENV, **extra}.items():
        env.setdefault(key, value)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if _PACKAGE_ROOT not in paths:
        paths.insert(0, _PACKAGE_ROOT)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _run_subprocess(
    command: Sequence[str], workdir: Path, log_path: Path, env: Mapping[str, str], deadline: float
) -> _Outcome:
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=dict(env),
            start_new_session=True,  # its own process group: killed as a whole
        )
    try:
        while True:
            try:
                # Exited? Leave it unreaped (WNOWAIT) so its pid, and so its group id, cannot be
                # reused before the group is swept.
                exited = (
                    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                    is not None
                )
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): fall back to poll
                exited = process.poll() is not None
            if exited:
                _sweep_group(process.pid)
                return _Outcome(False, process.wait())
            if time.monotonic() >= deadline:
                _kill_group(process.pid)
                process.wait()
                return _Outcome(True, process.returncode)
            time.sleep(_POLL_SECONDS)
    except BaseException:
        _kill_group(process.pid)
        process.wait()
        raise


def _run_forkserver(
    target: Callable[..., None], args: tuple[Any, ...], deadline: float
) -> _Outcome:
    """Run `target(*args)` in a forked child; `target` must call `os.setsid()` first."""
    context = _forkserver_context()
    process = context.Process(target=target, args=args, name="regpilot-evaluation")
    process.start()
    pid = int(process.pid)
    try:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            _kill_group(pid)
            process.join()
            return _Outcome(True, process.exitcode)
        _sweep_group(pid)
        return _Outcome(False, process.exitcode)
    except BaseException:
        _kill_group(pid)
        process.join()
        raise


def _read_progress(path: Path) -> tuple[str | None, str | None, set[str]]:
    """(run id, step in flight, steps finished) from the child's progress lines."""
    run_id: str | None = None
    open_steps: list[str] = []
    finished: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, None, finished
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut by SIGKILL
        if "run_id" in event:
            run_id = str(event["run_id"])
        step = event.get("step")
        if step and event.get("state") == "start":
            open_steps.append(str(step))
        elif step and event.get("state") == "end" and step in open_steps:
            open_steps.remove(step)
            finished.add(str(step))
    return run_id, (open_steps[-1] if open_steps else None), finished


def _last_error_line(log_path: Path) -> str:
    try:
        with open(log_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line or "Killed" in line or "Fatal" in line:
            return line
    return lines[-1] if lines else ""


def _mark_run(tracking_uri: str, run_id: str, status: str, reason: str) -> None:
    """Best effort: tag and terminate a run the child could not end itself."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        client.set_tag(run_id, "regpilot_status", "failed")
        client.set_tag(run_id, "regpilot_failure", reason[:250])
        client.set_terminated(run_id, status=status)
    except Exception:
        pass


def _crash_reason(returncode: int | None, log_path: Path) -> str:
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGKILL":
            return "evaluation process was killed by SIGKILL (out of memory?)"
        return f"evaluation process crashed: killed by {name}"
    line = _last_error_line(log_path)
    reason = f"evaluation process exited with code {returncode} without a result"
    return f"{reason}: {line}" if line else reason


def _seconds(value: float) -> str:
    return f"{value:g}"


def evaluate_model(
    model_uri: str,
    spec: EvaluationSpec,
    *,
    tracking_uri: str,
    experiment_name: str = "regpilot-evaluations",
    run_tags: Mapping[str, str] | None = None,
    logged_example_check: bool = True,
    registry_uri: str | None = None,
    start_method: StartMethod = "subprocess",
    python: str | None = None,
    child_env: Mapping[str, str] | None = None,
) -> EvaluationResult:
    """Measure `model_uri` on `spec.dataset` in a killable child process (see module doc).

    Returns an EvaluationResult: measured metrics, or FAILED with a one-line `failure`. Raises
    EvaluationInfrastructureError only when MLflow or storage is unreachable. `python` is the
    interpreter for the subprocess mode (default: this one); `child_env` adds environment
    defaults for the child (subprocess mode; the caller's environment wins).
    """
    if start_method not in ("subprocess", "forkserver"):
        raise ValueError(f"start_method must be 'subprocess' or 'forkserver', not {start_method!r}")
    started = time.perf_counter()
    check_tracking_server(tracking_uri)
    workdir = Path(tempfile.mkdtemp(prefix="regpilot-eval-"))
    try:
        request_path = workdir / "request.json"
        result_path = workdir / "result.json"
        progress_path = workdir / "progress.jsonl"
        log_path = workdir / "child.log"
        request = {
            "model_uri": model_uri,
            "spec": spec.as_dict(),
            "tracking_uri": tracking_uri,
            "registry_uri": registry_uri,
            "experiment_name": experiment_name,
            "run_tags": dict(run_tags or {}),
            "logged_example_check": logged_example_check,
            "workdir": str(workdir),
            "result_path": str(result_path),
            "progress_path": str(progress_path),
            "log_path": str(log_path),
            "env_defaults": {**DEFAULT_CHILD_ENV, **dict(child_env or {})},
        }
        request_path.write_text(json.dumps(request), encoding="utf-8")
        launched = time.time()
        deadline = time.monotonic() + spec.timeout_seconds
        try:
            if start_method == "forkserver":
                from regpilot.evaluation.child import forkserver_entry

                outcome = _run_forkserver(forkserver_entry, (str(request_path),), deadline)
            else:
                command = [python or sys.executable, "-m", "regpilot.evaluation.child"]
                env = _child_environment(dict(child_env or {}))
                outcome = _run_subprocess(
                    [*command, str(request_path)], workdir, log_path, env, deadline
                )
        except OSError as exc:  # could not start a process at all (EAGAIN, ENOMEM, no python)
            raise EvaluationInfrastructureError(
                f"cannot start the evaluation process: {exc}"
            ) from exc
        total = time.perf_counter() - started
        run_id, in_flight, finished = _read_progress(progress_path)
        during = f" during {in_flight}" if in_flight else ""
        if outcome.timed_out:
            failure = f"evaluation timed out after {_seconds(spec.timeout_seconds)}s"
            if run_id:
                _mark_run(tracking_uri, run_id, "KILLED", failure + during)
            return EvaluationResult.failed(
                model_uri,
                failure,
                "timeout",
                steps=[
                    StepResult("timeout", False, f"killed with SIGKILL{during} after {total:.1f}s")
                ],
                timings={"total": round(total, 6)},
                evaluation_run_id=run_id,
                loaded="load" in finished,
            )
        try:
            reply = json.loads(result_path.read_text(encoding="utf-8"))
            result = EvaluationResult.from_dict(reply["result"])
        except (OSError, ValueError, KeyError, TypeError):
            reason = _crash_reason(outcome.returncode, log_path) + during
            if run_id:
                _mark_run(tracking_uri, run_id, "FAILED", reason)
            kind: FailureKind = "crash"
            return EvaluationResult.failed(
                model_uri,
                reason,
                kind,
                steps=[StepResult("crash", False, one_line(reason))],
                timings={"total": round(total, 6)},
                evaluation_run_id=run_id,
                loaded="load" in finished,
            )
        if reply.get("infrastructure_error"):
            raise EvaluationInfrastructureError(
                f"evaluation of {model_uri} could not reach MLflow or storage: "
                f"{reply['infrastructure_error']}"
            )
        timings = dict(result.timings)
        clock = reply.get("clock") or {}
        ready, entry = clock.get("ready"), clock.get("entry")
        if isinstance(ready, int | float) and math.isfinite(ready):
            timings["startup"] = max(0.0, float(ready) - launched)
            if isinstance(entry, int | float) and math.isfinite(entry):
                timings["imports"] = max(0.0, float(ready) - float(entry))  # part of startup
        timings["total"] = total
        accounted = sum(
            timings.get(k, 0.0)
            for k in ("startup", "dataset", "load", "predict", "metrics", "logging")
        )
        timings["overhead"] = max(0.0, total - accounted)
        return replace(result, timings={k: round(v, 6) for k, v in timings.items()})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
