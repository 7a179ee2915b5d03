"""Configuration mistakes are one line naming the setting; `--debug` shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from regpilot.cli.common import tracking_uri_problem

REGPILOT = str(Path(sys.executable).with_name("regpilot"))


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `regpilot` with these settings and no others of ours."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REGPILOT_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))
    }
    return subprocess.run(
        [REGPILOT, *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("htp://x", "unknown scheme 'htp'"),
        ("localhost:5000", "did you mean http://localhost:5000?"),
        ("ftp://models.example.com", "unknown scheme 'ftp'"),
        ("http://", "no host"),
        ("http://host:port", "port is not a number"),
        ("", "empty"),
    ],
)
def test_a_malformed_tracking_uri_is_named_with_what_is_wrong(uri, says):
    problem = tracking_uri_problem(uri)
    assert problem is not None and says in problem


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:5000", "https://mlflow.example.com", "databricks", "file:///tmp/mlruns"],
)
def test_a_well_formed_tracking_uri_passes(uri):
    assert tracking_uri_problem(uri) is None


@pytest.mark.parametrize("uri", ["htp://x", "localhost:5000"])
def test_the_cli_names_a_malformed_tracking_uri_in_one_line(uri):
    result = run_cli("details", "some-model", "--version", "1", MLFLOW_TRACKING_URI=uri)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(f"Error: MLFLOW_TRACKING_URI={uri}: ")
    assert "Traceback" not in result.stderr


def test_an_unreachable_tracking_server_says_which_setting_to_change():
    result = run_cli(
        "details", "some-model", "--version", "1", MLFLOW_TRACKING_URI="http://127.0.0.1:1"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: MLFLOW_TRACKING_URI=http://127.0.0.1:1: no MLflow server answers there; "
        "set MLFLOW_TRACKING_URI to your tracking server"
    )


def test_an_unset_tracking_uri_is_reported_as_unset_with_its_default():
    result = run_cli("details", "some-model", "--version", "1")
    if "no MLflow server answers" not in result.stderr:
        pytest.skip("an MLflow server answers on the default port on this machine")
    assert "MLFLOW_TRACKING_URI (unset; default http://127.0.0.1:5000)" in result.stderr


@pytest.mark.parametrize("command", [["ops", "events"], ["history", "some-model"]])
def test_unreachable_redis_is_one_line_naming_the_setting(command):
    result = run_cli(*command, REGPILOT_REDIS_URL="redis://:hunter2@127.0.0.1:1/3")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "REGPILOT_REDIS_URL=redis://:***@127.0.0.1:1/3" in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_a_bad_number_setting_is_one_line_naming_it():
    result = run_cli("history", "m", REGPILOT_LOCK_TIMEOUT_SECONDS="soon")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: invalid setting REGPILOT_LOCK_TIMEOUT_SECONDS=soon: ")
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = run_cli("--debug", "details", "m", "--version", "1", MLFLOW_TRACKING_URI="htp://x")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ConfigurationError" in result.stderr
