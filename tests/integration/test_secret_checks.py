"""Unusable secrets stop the receiver and the worker at start-up, naming variable and entry.

Before this check, `whsec_` or `whsec_!!!!` (or one such entry in a rotation list) started the
receiver, and then every delivery got a 500 that senders retry forever. These tests start the
parts the way a user does: `regpilot serve` / `regpilot worker` as processes with the
variables in their environment, and `create_app` with Settings read from the environment.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import uuid

import pytest

from config.settings import Settings, child_environment, settings_environment
from handlers import create_app
from handlers.app import ConfigurationError
from regpilot.cli.stack import free_port
from tests.conftest import ROOT
from tests.support import derive, run_webhook

pytestmark = pytest.mark.integration

GOOD = "whsec_" + base64.b64encode(os.urandom(24)).decode()
BAD_RUN_SECRETS = [
    ("whsec_", 1, 1),
    ("whsec_!!!!", 1, 1),
    (f"{GOOD},whsec_!!!!", 2, 2),
    (f"{GOOD},,{GOOD}", 2, 3),
    (f"{GOOD},", 2, 2),
    ("whsec_abc-_def", 1, 1),  # URL-safe alphabet: Python would silently drop "-" and "_"
]


def _environment(settings: Settings, **overrides: str) -> dict[str, str]:
    env = settings_environment(settings)
    env.update(overrides)
    env["PYTHONUNBUFFERED"] = "1"
    return child_environment(env)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a `regpilot` command that should refuse; stop its whole group if it does not."""
    process = subprocess.Popen(
        [sys.executable, "-m", "regpilot.cli.main", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"`regpilot {args[0]}` did not refuse to start: it ran for 90 s")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# Ids name the case, never the random secret: parallel pytest processes must collect the same ids.
@pytest.mark.parametrize(
    ("secret", "position", "count"),
    BAD_RUN_SECRETS,
    ids=["empty", "not-base64", "bad-second", "empty-middle", "trailing-comma", "url-safe"],
)
def test_create_app_refuses_a_run_secret_that_decodes_to_nothing(
    settings, monkeypatch, secret, position, count
):
    for name, value in settings_environment(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REGPILOT_RUN_WEBHOOK_SECRET", secret)
    with pytest.raises(ConfigurationError) as refused:
        create_app(Settings(), configure_logging=False)
    message = str(refused.value)
    assert f"REGPILOT_RUN_WEBHOOK_SECRET entry {position} of {count}" in message
    assert "whsec_!!!!" not in message and GOOD not in message


def test_regpilot_serve_refuses_a_bad_rotation_entry_and_never_prints_it(settings):
    bad = "whsec_!!!!"
    env = _environment(settings, REGPILOT_RUN_WEBHOOK_SECRET=f"{GOOD},{bad}")
    result = _run(["serve", "--port", str(free_port()), "--workers", "1"], env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "REGPILOT_RUN_WEBHOOK_SECRET entry 2 of 2" in output
    assert "Traceback" not in output
    assert bad not in output and GOOD not in output and GOOD[6:] not in output


@pytest.mark.parametrize(
    ("variable", "value", "where"),
    [
        ("REGPILOT_MLFLOW_WEBHOOK_SECRET", "mlflow-secret-one, ,mlflow-secret-2", "entry 2 of 3"),
        ("REGPILOT_OPS_TOKEN", "short-token", "is 11 characters"),
    ],
)
def test_regpilot_serve_refuses_other_bad_secrets(settings, variable, value, where):
    env = _environment(settings, **{variable: value})
    result = _run(["serve", "--port", str(free_port())], env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{variable} {where}" in output or f"{variable}: {where}" in output, output
    assert value not in output and "Traceback" not in output


def test_the_worker_refuses_a_databricks_token_it_could_not_send(settings):
    token = "dapi" + uuid.uuid4().hex + "\n"
    env = _environment(settings, DATABRICKS_TOKEN=token)
    result = _run(["worker", "-c", "1"], env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "DATABRICKS_TOKEN" in output and "HTTP header" in output
    assert token.strip() not in output


def test_every_good_entry_of_a_rotation_list_still_verifies(settings):
    older = "whsec_" + base64.b64encode(os.urandom(32)).decode().rstrip("=")  # unpadded is fine
    rotated = derive(
        settings,
        run_webhook_secret=f"{GOOD}, {older}",
        task_queue=f"{settings.key_prefix}secrets-{uuid.uuid4().hex[:6]}",  # no worker takes it
    )
    http = create_app(rotated, configure_logging=False).test_client()
    for secret in (GOOD, older):
        body, headers = run_webhook(secret, uuid.uuid4().hex, f"rotation-{uuid.uuid4().hex[:6]}")
        assert http.post("/webhooks/runs", data=body, headers=headers).status_code == 202


def test_regpilot_up_refuses_a_damaged_secrets_file_before_starting_anything(tmp_path):
    import json

    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "secrets.json").write_text(
        json.dumps(
            {
                "mlflow_webhook_secret": "mlflow-secret-0123456789",
                "run_webhook_secret": "whsec_!!!!",
                "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            }
        )
    )
    env = child_environment({"REGPILOT_STATE_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"})
    result = _run(["up", "--port", str(free_port())], env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "REGPILOT_RUN_WEBHOOK_SECRET entry 1 of 1" in output and "secrets.json" in output
    assert "whsec_!!!!" not in output and "starting MLflow" not in output
