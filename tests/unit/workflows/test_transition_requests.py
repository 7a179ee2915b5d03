"""Stage-transition requests (Databricks workspace registry): judged, approved or rejected."""

from __future__ import annotations

from regpilot.core.registry_port import NotFound
from regpilot.workflows.transition_requests import process_transition_request
from tests.fakes import FakeRegistry
from tests.unit.workflows.conftest import FAILING, PASSING


class FakeTransitions:
    """Open requests per (model, version); answering one closes it."""

    def __init__(self, open_requests: dict[tuple[str, int], list[str]]) -> None:
        self.open = open_requests
        self.answers: list[tuple[str, int, str, str, str]] = []

    def open_transition_stages(self, name: str, version: int) -> list[str]:
        return list(self.open.get((name, version), []))

    def _answer(self, action: str, name: str, version: int, stage: str, comment: str) -> None:
        if stage not in self.open.get((name, version), []):
            raise NotFound(f"no open request to {stage}")
        self.open[(name, version)].remove(stage)
        self.answers.append((action, name, version, stage, comment))

    def approve_transition(self, name: str, version: int, stage: str, comment: str) -> None:
        self._answer("approve", name, version, stage, comment)

    def reject_transition(self, name: str, version: int, stage: str, comment: str) -> None:
        self._answer("reject", name, version, stage, comment)


def _version(registry: FakeRegistry, metrics, **run_kwargs) -> int:
    run = registry.add_run(metrics, **run_kwargs)
    [model] = registry.logged_models(run)
    return registry.create_version("churn", model.uri, run.run_id, {}, None).version


def test_a_passing_version_is_approved_and_a_failing_one_rejected(make_ctx):
    ctx = make_ctx(FakeRegistry.workspace())
    good, bad = _version(ctx.registry, PASSING), _version(ctx.registry, FAILING)
    port = FakeTransitions({("churn", good): ["Staging"], ("churn", bad): ["Production"]})
    assert process_transition_request(ctx, port, "churn", good, None).status == "approved"
    outcome = process_transition_request(ctx, port, "churn", bad, "Production")
    assert outcome.status == "rejected" and outcome.verdict == "FAILED"
    actions = [(a[0], a[2], a[3]) for a in port.answers]
    assert actions == [("approve", good, "Staging"), ("reject", bad, "Production")]
    assert "test_accuracy" in port.answers[1][4]


def test_a_request_already_answered_is_skipped(make_ctx):
    ctx = make_ctx(FakeRegistry.workspace())
    version = _version(ctx.registry, PASSING)
    port = FakeTransitions({("churn", version): ["Staging"]})
    process_transition_request(ctx, port, "churn", version, "Staging")
    again = process_transition_request(ctx, port, "churn", version, "Staging")
    assert again.status == "skipped" and len(port.answers) == 1


def test_a_request_to_archive_is_not_reviewed(make_ctx):
    ctx = make_ctx(FakeRegistry.workspace())
    version = _version(ctx.registry, PASSING)
    port = FakeTransitions({("churn", version): ["Archived"]})
    assert process_transition_request(ctx, port, "churn", version, None).status == "skipped"
    assert port.answers == []


def test_a_version_of_a_failed_run_is_rejected(make_ctx):
    ctx = make_ctx(FakeRegistry.workspace())
    version = _version(ctx.registry, PASSING, status="FAILED")
    port = FakeTransitions({("churn", version): ["Production"]})
    outcome = process_transition_request(ctx, port, "churn", version, None)
    assert outcome.status == "rejected"
    assert "the run ended FAILED" in port.answers[0][4]
