"""The `regpilot` command: help everywhere, notify-run, webhooks install, and the demo itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.settings import child_environment, settings_environment
from regpilot.cli.main import main
from tests.support import PASSING, train_run, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _commands(group=main, prefix=()):
    import click

    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *_commands()], ids=lambda p: " ".join(p) or "regpilot")
def test_every_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


def test_help_of_the_installed_console_script():
    script = Path(sys.executable).with_name("regpilot")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    for name in ("serve", "worker", "beat", "up", "demo", "notify-run", "webhooks"):
        assert name in result.stdout


def test_notify_run_sends_a_signed_webhook_that_is_processed(stack, client):
    run_id = train_run(PASSING)
    env = settings_environment(stack["settings"])
    result = CliRunner().invoke(
        main,
        [
            "notify-run",
            run_id,
            "--model-name",
            "cli-notified",
            "--url",
            f"{stack['receiver'].url}/webhooks/runs",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "queued"
    again = CliRunner().invoke(
        main,
        [
            "notify-run",
            run_id,
            "--model-name",
            "cli-notified",
            "--url",
            f"{stack['receiver'].url}/webhooks/runs",
        ],
        env=env,
    )
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"run {run_id} for cli-notified: ")  # one human line
    assert len(again.stdout.splitlines()) == 1
    wait_until(lambda: client.get_run(run_id).data.tags.get("validation_status"), message="verdict")
    assert len(client.search_model_versions("name = 'cli-notified'")) == 1


def test_notify_run_without_a_secret_is_a_clear_error():
    result = CliRunner().invoke(
        main, ["notify-run", "abc"], env={"REGPILOT_RUN_WEBHOOK_SECRET": ""}
    )
    assert result.exit_code != 0
    assert "REGPILOT_RUN_WEBHOOK_SECRET" in result.output
    assert "Traceback" not in result.output


def test_webhooks_install_creates_then_updates_and_warns(mlflow_server, settings):
    from mlflow import MlflowClient

    env = {**settings_environment(settings), "MLFLOW_TRACKING_URI": mlflow_server}
    # Its own name: the session's "regpilot" webhook must keep pointing at the receiver.
    args = [
        "webhooks",
        "install",
        "--name",
        "cli-install-test",
        "--url",
        "http://127.0.0.1:9/webhooks/mlflow",
    ]
    client = MlflowClient(tracking_uri=mlflow_server)
    try:
        first = CliRunner().invoke(main, args, env=env)
        assert first.exit_code == 0, first.output
        assert "created" in first.output
        assert "MLFLOW_WEBHOOK_ALLOWED_SCHEMES" in first.output
        assert "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS" in first.output
        second = CliRunner().invoke(main, args, env=env)
        assert second.exit_code == 0 and "updated" in second.output
        hooks = [w for w in client.list_webhooks() if w.name == "cli-install-test"]
        assert len(hooks) == 1 and hooks[0].url == "http://127.0.0.1:9/webhooks/mlflow"
    finally:
        for hook in client.list_webhooks():
            if hook.name == "cli-install-test":
                client.delete_webhook(hook.webhook_id)


@pytest.mark.slow(90)
def test_demo_runs_the_whole_flow_and_prints_the_outcome_table(tmp_path, redis_url):
    env = child_environment(
        {
            "REGPILOT_STATE_DIR": str(tmp_path / "state"),
            "MLFLOW_TRACKING_URI": "",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("MLFLOW_TRACKING_URI")
    result = subprocess.run(
        [sys.executable, "-m", "regpilot.cli.main", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "iris-classifier " in result.stdout and "challenger" in result.stdout
    assert "FAILED" in result.stdout and "PASSED" in result.stdout
    assert "demo: outcome matches the policy" in result.stdout
    # The third story: a perfect self-report, measured on the golden CSV, side by side.
    assert "iris-classifier-measured" in result.stdout
    assert "honesty:test_accuracy" in result.stdout and "(logged 1, measured" in result.stdout
    assert not (tmp_path / "state" / "demo").exists()


def test_worker_refuses_to_start_when_a_golden_dataset_lacks_its_targets(tmp_path):
    golden = tmp_path / "golden.csv"
    golden.write_text("f0,label\n1,0\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "models:\n  fraud:\n    evaluation:\n"
        f"      dataset: {golden}\n      targets: is_fraud\n      model_type: classifier\n"
    )
    result = CliRunner().invoke(main, ["worker"], env={"REGPILOT_POLICY_FILE": str(policy)})
    assert result.exit_code == 1
    assert "refusing to start" in result.output
    assert "models.fraud.evaluation.targets" in result.output and "is_fraud" in result.output
    assert "Traceback" not in result.output


def test_worker_refuses_to_start_with_an_invalid_policy(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("defaults:\n  metrics:\n    test_accuracy: {above: 0.9}\n")
    result = CliRunner().invoke(main, ["worker"], env={"REGPILOT_POLICY_FILE": str(bad)})
    assert result.exit_code == 1
    assert f"{bad}:3" in result.output and "defaults.metrics.test_accuracy" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_to_start_without_a_secret(tmp_path):
    env = {"REGPILOT_MLFLOW_WEBHOOK_SECRET": "", "REGPILOT_RUN_WEBHOOK_SECRET": ""}
    result = CliRunner().invoke(main, ["serve", "--port", "1"], env=env)
    assert result.exit_code == 1
    assert "no webhook secret configured" in result.output


def test_gunicorn_serves_the_app_factory(settings, tmp_path):
    from regpilot.cli.stack import free_port, wait_http

    port = free_port()
    env = child_environment({**settings_environment(settings), "PYTHONUNBUFFERED": "1"})
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "-b", f"127.0.0.1:{port}", "-w", "1", "handlers:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, process=process)
    finally:
        process.terminate()
        process.wait(timeout=20)
