"""`policy check` against a real MLflow server: metric names no run logged are warnings."""

from __future__ import annotations

import json
import uuid

from click.testing import CliRunner

from regpilot.cli.main import main
from tests.support import train_run


def registered_model(mlflow_server: str) -> str:
    """Register one version whose run logged test_precision and f1_macro; return its name."""
    from mlflow import MlflowClient

    name = f"policy-check-{uuid.uuid4().hex[:6]}"
    run_id = train_run({"test_accuracy": 0.9, "test_precision": 0.9, "f1_macro": 0.8})
    client = MlflowClient(mlflow_server)
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run_id}/model", run_id)
    return name


def test_a_misspelt_metric_is_a_warning_with_the_closest_logged_name(mlflow_server, tmp_path):
    name = registered_model(mlflow_server)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "defaults:\n"
        "  metrics:\n"
        "    test_accuracy: {min: 0.8}\n"
        "models:\n"
        f"  {name}:\n"
        "    metrics:\n"
        "      test_precison: {min: 0.8}\n"  # line 7: a typo
    )
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    result = CliRunner().invoke(main, ["policy", "check", "--policy", str(policy)], env=env)
    assert result.exit_code == 0, result.output
    assert (
        f"warning: {policy}:7: policy key 'models.{name}.metrics.test_precison': no run behind "
        f"{name}'s registered versions logged 'test_precison'; did you mean test_precision?"
    ) in result.output
    as_json = CliRunner().invoke(main, ["policy", "check", str(policy), "--json"], env=env)
    assert len(json.loads(as_json.stdout)["warnings"]) == 1  # test_accuracy was logged

    backtest = CliRunner().invoke(
        main, ["policy", "backtest", name, "--policy", str(policy), "--json"], env=env
    )
    assert backtest.exit_code == 0, backtest.output
    verdicts = json.loads(backtest.stdout)
    assert verdicts["policy"] == str(policy)
    assert verdicts["versions"][0]["now"] == "FAILED"  # test_precison is missing


def test_without_mlflow_the_check_says_metric_names_were_not_checked(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("models:\n  some-model:\n    retention: {keep: 3}\n")
    result = CliRunner().invoke(
        main,
        ["policy", "check", "--policy", str(policy)],
        env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"},
    )
    assert result.exit_code == 0, result.output
    assert "did not answer; metric names were not checked" in result.output
