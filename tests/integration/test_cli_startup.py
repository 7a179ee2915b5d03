"""Commands that do not call MLflow do not pay for `import mlflow` (seconds per call)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

PROBE = """
import json, sys
from regpilot.cli.main import main
try:
    main(sys.argv[1:], prog_name="regpilot", standalone_mode=False)
except SystemExit:
    pass
heavy = [m for m in ("mlflow", "pandas", "sklearn", "celery") if m in sys.modules]
print(json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "command",
    [
        ["--help"],
        ["ops", "events"],
        ["ops", "dead-letters", "list"],
        ["history", "some-model"],
        ["policy", "check"],
        ["up", "--help"],
    ],
)
def test_commands_that_do_not_call_mlflow_do_not_import_it(command, redis_url):
    env = {
        **os.environ,
        "REGPILOT_REDIS_URL": redis_url,
        "REGPILOT_KEY_PREFIX": f"regpilot-startup-{uuid.uuid4().hex[:8]}:",
        "REGPILOT_POLICY_FILE": str(FIXTURES / "policy.yaml"),
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:1",  # nothing answers: no MLflow to ask
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    heavy = json.loads(result.stderr.strip().splitlines()[-1])
    assert heavy == [], f"`regpilot {' '.join(command)}` imported {heavy}"
