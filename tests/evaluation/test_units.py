"""spec.py, outputs.py, the child's failure classification and the runner's helpers (no server)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regpilot.evaluation import runner
from regpilot.evaluation.child import describe_exception, is_infrastructure
from regpilot.evaluation.outputs import (
    NUMERIC,
    STRING,
    OutputDescription,
    SchemaDescription,
    check_output,
    describe_output,
    describe_schema,
)
from regpilot.evaluation.spec import EvaluationResult, EvaluationSpec, StepResult, one_line

# -- spec -----------------------------------------------------------------------------------------


def test_spec_validates_and_normalises() -> None:
    spec = EvaluationSpec("d.csv", "label", "classifier", metrics={"f1_score": ["min", 1]})  # type: ignore[dict-item]
    assert spec.metrics == {"f1_score": ("min", 1.0)}
    assert EvaluationSpec.from_dict(json.loads(json.dumps(spec.as_dict()))) == spec
    for bad in (
        {"model_type": "ranker"},
        {"env_manager": "conda"},
        {"max_rows": 0},
        {"max_rows": True},
        {"timeout_seconds": 0},
        {"timeout_seconds": float("inf")},
        {"metrics": {"a": ("atleast", 1)}},
        {"metrics": {"a": ("min", float("nan"))}},
        {"metrics": {"a": ("min",)}},
        {"targets": ""},
    ):
        values = {"dataset": "d.csv", "targets": "label", "model_type": "classifier", **bad}
        with pytest.raises(ValueError):
            EvaluationSpec(**values)  # type: ignore[arg-type]


def test_result_round_trips_and_knows_when_it_is_ok() -> None:
    result = EvaluationResult(
        model_uri="models:/m/1",
        loaded=True,
        predicted_example=False,
        measured={"accuracy_score": 0.9},
        steps=[StepResult("load", True, "ok"), StepResult("signature", False, "2 columns")],
        evaluation_run_id="r1",
        dataset_digest="abcd",
        timings={"load": 0.1},
        failure=None,
        dataset_rows=10,
    )
    assert EvaluationResult.from_dict(json.loads(json.dumps(result.as_dict()))) == result
    assert not result.ok  # a failed step
    failed = EvaluationResult.failed("models:/m/1", "evaluation timed out\nafter 3s", "timeout")
    assert failed.failure == "evaluation timed out after 3s" and not failed.ok
    assert EvaluationResult.from_dict(failed.as_dict()) == failed
    with pytest.raises(ValueError, match="failure_kind"):
        EvaluationResult.from_dict({**failed.as_dict(), "failure_kind": "meteor"})
    assert one_line("x" * 400).endswith("…") and len(one_line("x" * 400)) == 300


# -- outputs --------------------------------------------------------------------------------------


def test_outputs_match_a_tensor_signature() -> None:
    schema = SchemaDescription(tensor_shape=(-1,), tensor_class=NUMERIC)
    ok, detail = check_output(schema, describe_output(np.array([0, 1, 1])), 3)
    assert ok and "matches signature" in detail
    ok, detail = check_output(schema, describe_output(np.array(["a", "b", "c"])), 3)
    assert not ok and detail == "output values are string, signature says numeric"
    ok, detail = check_output(schema, describe_output(np.zeros((3, 2))), 3)
    assert not ok and "does not fit signature shape" in detail
    ok, detail = check_output(schema, describe_output(np.array([0, 1])), 3)
    assert not ok and detail == "returned 2 rows for 3 example rows"
    wide = SchemaDescription(tensor_shape=(-1, 2), tensor_class=NUMERIC)
    assert check_output(wide, describe_output(np.zeros((3, 2))), 3)[0]
    assert not check_output(wide, describe_output(np.zeros((3, 4))), 3)[0]


def test_outputs_match_a_column_signature() -> None:
    schema = SchemaDescription(columns=(("label", NUMERIC), ("name", STRING)))
    good = pd.DataFrame({"name": ["a", "b"], "label": [1, 0]})
    assert check_output(schema, describe_output(good), 2) == (
        True,
        "output (DataFrame (2, 2)) matches signature: 2 column(s), names",
    )
    renamed = good.rename(columns={"name": "title"})
    ok, detail = check_output(schema, describe_output(renamed), 2)
    assert not ok and "missing ['name'], unexpected ['title']" in detail
    swapped = pd.DataFrame({"name": [1, 2], "label": ["x", "y"]})
    ok, detail = check_output(schema, describe_output(swapped), 2)
    assert not ok and "column label is string, signature says numeric" in detail
    ok, detail = check_output(schema, describe_output(np.array([1, 0])), 2)
    assert not ok and detail.startswith("1 output columns, signature has 2")
    single = SchemaDescription(columns=((None, NUMERIC),))
    assert check_output(single, describe_output(pd.Series([1.0, 2.0])), 2)[0]
    assert check_output(single, describe_output([True, False]), 2)[0]  # bool counts as numeric
    objects = pd.Series(["x", None, "y"], dtype=object)
    assert not check_output(single, describe_output(objects), 3)[0]


def test_describe_output_handles_dicts_and_scalars() -> None:
    described = describe_output({"a": [1, 2], "b": ["x", "y"]})
    assert described == OutputDescription(2, (2, 2), ("a", "b"), (NUMERIC, STRING), "dict")
    assert describe_output("yes").rows is None


def test_describe_schema_from_real_mlflow_signatures() -> None:
    from mlflow.models import infer_signature

    x = pd.DataFrame({"a": [1.0, 2.0]})
    tensor = describe_schema(infer_signature(x, np.array([0, 1])).outputs)
    assert tensor == SchemaDescription(tensor_shape=(-1,), tensor_class=NUMERIC)
    columns = describe_schema(
        infer_signature(
            x, pd.DataFrame({"label": [0, 1], "p": [0.1, 0.9], "s": ["a", "b"]})
        ).outputs
    )
    assert columns == SchemaDescription(columns=(("label", NUMERIC), ("p", NUMERIC), ("s", STRING)))
    assert describe_schema(infer_signature(x).outputs) is None
    assert describe_schema(None) is None


# -- failure classification -----------------------------------------------------------------------


def test_connection_errors_are_infrastructure_only_where_mlflow_is_called() -> None:
    import requests
    from mlflow.exceptions import MlflowException, RestException

    refused = requests.exceptions.ConnectionError("Connection refused")
    assert is_infrastructure(refused, io_step=True)
    assert not is_infrastructure(refused, io_step=False)  # the model's own HTTP call
    try:
        try:
            raise refused
        except Exception as inner:
            raise MlflowException(f"API request to http://x/api failed with exception {inner}")  # noqa: B904
    except MlflowException as wrapped:
        assert is_infrastructure(wrapped, io_step=False)  # MLflow's REST client gave up
    assert is_infrastructure(
        RestException({"error_code": "TEMPORARILY_UNAVAILABLE"}), io_step=False
    )
    assert is_infrastructure(RestException({"error_code": "INTERNAL_ERROR"}), io_step=False)
    not_found = RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no model"})
    assert not is_infrastructure(not_found, io_step=True)
    # MlflowException defaults to INTERNAL_ERROR even for local problems: not infrastructure.
    assert not is_infrastructure(MlflowException("schema enforcement failed"), io_step=True)
    assert not is_infrastructure(ValueError("bad input"), io_step=True)
    assert is_infrastructure(TimeoutError("timed out"), io_step=True)


def test_describe_exception_is_one_line() -> None:
    assert describe_exception(ValueError("first\nsecond")) == "ValueError: first"
    assert describe_exception(KeyError()) == "KeyError"


# -- runner helpers -------------------------------------------------------------------------------


def test_preflight_raises_for_a_closed_port_and_skips_other_schemes() -> None:
    from regpilot.cli.stack import free_port

    with pytest.raises(runner.EvaluationInfrastructureError, match="unreachable"):
        runner.check_tracking_server(f"http://127.0.0.1:{free_port()}", timeout=2)
    runner.check_tracking_server("databricks")
    runner.check_tracking_server("sqlite:////tmp/x.db")


def test_progress_file_gives_run_id_and_step_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "progress.jsonl"
    lines = [
        {"step": "connect", "state": "start"},
        {"step": "connect", "state": "end"},
        {"run_id": "abc"},
        {"step": "load", "state": "start"},
        {"step": "load", "state": "end"},
        {"step": "predict_example", "state": "start"},
    ]
    # The last line was cut by SIGKILL.
    path.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"step": "evalu')
    assert runner._read_progress(path) == ("abc", "predict_example", {"connect", "load"})
    assert runner._read_progress(tmp_path / "missing") == (None, None, set())


def test_crash_reasons(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("INFO fine\nMemoryError: cannot allocate\nINFO bye\n")
    assert runner._crash_reason(-signal.SIGSEGV, log) == (
        "evaluation process crashed: killed by SIGSEGV"
    )
    assert "out of memory" in runner._crash_reason(-signal.SIGKILL, log)
    assert runner._crash_reason(3, log) == (
        "evaluation process exited with code 3 without a result: MemoryError: cannot allocate"
    )


def test_bad_start_method_is_rejected() -> None:
    spec = EvaluationSpec("d.csv", "label", "classifier")
    with pytest.raises(ValueError, match="start_method"):
        runner.evaluate_model("m", spec, tracking_uri="x", start_method="thread")  # type: ignore[arg-type]


def test_subprocess_runner_kills_the_group_on_deadline(tmp_path: Path) -> None:
    """The process-group kill without MLflow: a shell that starts a grandchild and hangs."""
    marker = tmp_path / "grandchild.pid"
    script = f"sleep 61.9191 & echo $! > {marker}; wait"
    started = time.monotonic()
    outcome = runner._run_subprocess(
        ["sh", "-c", script],
        tmp_path,
        tmp_path / "log",
        {"PATH": "/usr/bin:/bin"},
        time.monotonic() + 1.0,
    )
    assert outcome.timed_out and outcome.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 3
    grandchild = int(marker.read_text())
    deadline = time.monotonic() + 3
    while Path(f"/proc/{grandchild}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{grandchild}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    if Path(f"/proc/{grandchild}").exists():
        assert Path(f"/proc/{grandchild}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_subprocess_runner_sweeps_leftovers_after_a_normal_exit(tmp_path: Path) -> None:
    marker = tmp_path / "orphan.pid"
    # The child exits at once but leaves a background process in its group.
    script = f"sleep 62.8282 & echo $! > {marker}; exit 0"
    outcome = runner._run_subprocess(
        ["sh", "-c", script],
        tmp_path,
        tmp_path / "log",
        {"PATH": "/usr/bin:/bin"},
        time.monotonic() + 10,
    )
    assert not outcome.timed_out and outcome.returncode == 0
    orphan = int(marker.read_text())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{orphan}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            break
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the orphaned grandchild survived the sweep")


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _dead(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _state(pid) in (None, "Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.usefixtures("forkserver_ready")
def test_forkserver_runner_kills_the_group_on_deadline(tmp_path: Path) -> None:
    from tests.evaluation.forkserver_targets import hang_with_helper

    pid_file = tmp_path / "pids"
    outcome = runner._run_forkserver(
        hang_with_helper, (str(pid_file), "63.5353"), time.monotonic() + 4.0
    )
    assert outcome.timed_out and outcome.returncode == -signal.SIGKILL
    child, helper = (int(p) for p in pid_file.read_text().split())
    assert _dead(child) and _dead(helper)


@pytest.mark.usefixtures("forkserver_ready")
def test_forkserver_runner_sweeps_leftovers_after_a_normal_exit(tmp_path: Path) -> None:
    from tests.evaluation.forkserver_targets import exit_leaving_helper

    pid_file = tmp_path / "pids"
    outcome = runner._run_forkserver(
        exit_leaving_helper, (str(pid_file), "64.6464"), time.monotonic() + 30
    )
    assert not outcome.timed_out and outcome.returncode == 0
    _, helper = (int(p) for p in pid_file.read_text().split())
    assert _dead(helper)
