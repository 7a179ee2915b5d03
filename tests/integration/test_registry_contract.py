"""The registry port's contract on the real MLflow adapter (twin of the unit test on the fake).

The same checks (tests/registry_contract.py) run against a real MLflow server: when MLflow
answers differently from tests/fakes.FakeRegistry, one of these fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

import pytest

from regpilot.core.registry_port import WORKSPACE_CAPABILITIES, RunInfo
from regpilot.registry.mlflow_registry import MlflowRegistry
from tests.registry_contract import CHECKS, World
from tests.support import train_run

pytestmark = pytest.mark.integration

EXPERIMENT = f"contract-{uuid.uuid4().hex[:6]}"


def _world(mlflow_server: str, workspace: bool) -> World:
    registry = MlflowRegistry(mlflow_server)
    if workspace:
        # What MLFLOW_REGISTRY_URI=databricks declares: the adapter refuses alias calls itself.
        registry.capabilities = WORKSPACE_CAPABILITIES

    def make_run(metrics: Mapping[str, float]) -> RunInfo:
        return registry.get_run(train_run(metrics, experiment=EXPERIMENT))

    return World(registry, make_run, EXPERIMENT)


@pytest.mark.parametrize("flavour", ["oss", "workspace"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_mlflow_adapter_honours_the_port(
    check: Callable[[World], None], flavour: str, mlflow_server: str
) -> None:
    check(_world(mlflow_server, flavour == "workspace"))
