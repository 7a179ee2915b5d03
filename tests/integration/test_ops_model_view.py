"""`GET /ops/models/<name>`: a model's verdicts, alias timelines and decisions, on real services."""

from __future__ import annotations

import re
import uuid

import pytest
from click.testing import CliRunner

from config.settings import settings_environment
from handlers import create_app
from regpilot.cli.main import main
from tests.support import FAILING, PASSING, derive, train_run

pytestmark = pytest.mark.integration


def test_the_model_view_says_why_each_version_has_its_aliases(settings, mlflow_server):
    ops = derive(settings, ops_token="ops-" + uuid.uuid4().hex)
    name = f"ops-why-{uuid.uuid4().hex[:6]}"
    env = settings_environment(ops)
    passed, failed = train_run(PASSING), train_run(FAILING)
    for run_id in (passed, failed):
        CliRunner().invoke(
            main, ["register-model", "--run-id", run_id, "--model-name", name], env=env
        )
    done = CliRunner().invoke(main, ["alias", "set", name, "champion", "1"], env=env)
    assert done.exit_code == 0, done.output

    http = create_app(ops, configure_logging=False).test_client()
    assert http.get(f"/ops/models/{name}").status_code == 303  # not logged in: to the login form
    bearer = {"Authorization": f"Bearer {ops.ops_token.get_secret_value()}"}
    page = http.get(f"/ops/models/{name}", headers=bearer)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = r'<tr data-version="{}" data-run="{}">(.*?)</tr>'
    version_row = re.search(row.format(1, passed), html, re.S)
    assert version_row and "PASSED" in version_row.group(1)
    assert f'href="{mlflow_server}/#/models/{name}/versions/1"' in version_row.group(1)
    failed_row = re.search(row.format("", failed), html, re.S)
    assert failed_row and "FAILED" in failed_row.group(1)
    assert "<code>test_accuracy</code>: expected" in failed_row.group(1)
    champion = re.search(r'<table data-alias="champion">(.*?)</table>', html, re.S)
    assert champion and "promoted by hand" in champion.group(1)
    challenger = re.search(r'<table data-alias="challenger">(.*?)</table>', html, re.S)
    assert challenger and "passed its gate (run " + passed in challenger.group(1)

    unknown = http.get("/ops/models/never-decided-model", headers=bearer)
    assert unknown.status_code == 404 and "no decisions recorded" in unknown.get_json()["reason"]
