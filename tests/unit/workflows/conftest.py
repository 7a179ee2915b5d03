"""Workflow unit tests: a real Context over the in-memory registry and store (no services)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config.policy import parse_policy
from config.settings import Settings
from regpilot.workflows.context import Context, Trigger
from tests.fakes import FakeRegistry, FakeStore

PASSING = {"test_accuracy": 0.95, "test_precision": 0.93, "test_recall": 0.92}
FAILING = {"test_accuracy": 0.60, "test_precision": 0.93, "test_recall": 0.92}

BASE_POLICY = """
defaults:
  retention: {keep: 10}
"""

MakeContext = Callable[..., Context]


@pytest.fixture
def make_ctx() -> MakeContext:
    """Return a builder of a Context over a given fake registry and policy YAML."""

    def build(registry: FakeRegistry | None = None, policy: str = BASE_POLICY) -> Context:
        settings = Settings(
            mlflow_tracking_uri="http://fake-mlflow", redis_url="redis://127.0.0.1:1/0"
        )
        return Context(
            registry=registry or FakeRegistry.oss(),
            policy=parse_policy(policy),
            settings=settings,
            store=FakeStore(),  # type: ignore[arg-type]
            trigger=Trigger("test"),
        )

    return build
