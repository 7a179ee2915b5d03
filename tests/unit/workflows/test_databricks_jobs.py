"""A Databricks job finished: each MLflow run goes down the run path, failed ones included."""

from __future__ import annotations

from collections.abc import Sequence

from regpilot.core.databricks import FoundRun, JobRunPhase, JobRunView
from regpilot.workflows.databricks_jobs import process_job_completed
from tests.fakes import FakeRegistry
from tests.unit.workflows.conftest import PASSING


class Jobs:
    def job_run(self, run_id: int) -> JobRunView:
        return JobRunView(run_id, 7, JobRunPhase.SUCCEEDED, "SUCCESS")


class Finder:
    def __init__(self, runs: Sequence[FoundRun]) -> None:
        self.runs = runs

    def runs_for_job_runs(self, job_run_ids: Sequence[int]) -> Sequence[FoundRun]:
        return self.runs


def test_each_run_is_judged_and_a_failed_run_gets_its_failed_verdict(make_ctx):
    ctx = make_ctx(FakeRegistry.workspace())
    registry = ctx.registry
    good = registry.add_run(PASSING, tags={"regpilot_model_name": "churn"})
    crashed = registry.add_run(
        PASSING,
        status="FAILED",
        model_status="FAILED",
        has_mlmodel=False,
        tags={"regpilot_model_name": "churn"},
    )
    stuck = registry.add_run(PASSING, status="RUNNING", tags={"regpilot_model_name": "churn"})
    found = [FoundRun(r.run_id, r.status, 99) for r in (good, crashed, stuck)]
    outcome = process_job_completed(ctx, Jobs(), Finder(found), 99)
    statuses = {r.run_id: r.status for r in outcome.runs}
    assert statuses == {
        good.run_id: "processed",
        crashed.run_id: "processed",
        stuck.run_id: "skipped",
    }
    assert registry.get_run(good.run_id).tags["validation_status"] == "PASSED"
    assert registry.get_run(crashed.run_id).tags["validation_status"] == "FAILED"
    assert "the run ended FAILED" in registry.get_run(crashed.run_id).tags["validation_report"]
    assert "validation_status" not in registry.get_run(stuck.run_id).tags
    assert [v.version for v in registry.iter_versions("churn")] == [1]  # the good run only
    assert registry.get_version("churn", 1).stage == "Staging"  # challenger, workspace-style
