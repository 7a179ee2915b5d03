"""The registry port's contract on the in-memory fake (its real-MLflow twin: integration/)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from regpilot.core.registry_port import RunInfo
from tests.fakes import FakeRegistry
from tests.registry_contract import CHECKS, World


def _world(registry: FakeRegistry) -> World:
    def make_run(metrics: Mapping[str, float]) -> RunInfo:
        return registry.add_run(metrics, experiment="contract-experiment")

    return World(registry, make_run, "contract-experiment")


FLAVOURS: dict[str, Callable[[], FakeRegistry]] = {
    "oss": FakeRegistry.oss,
    "unity-catalog": FakeRegistry.unity_catalog,
    "workspace": FakeRegistry.workspace,
}


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_fake_honours_the_port(check: Callable[[World], None], flavour: str) -> None:
    check(_world(FLAVOURS[flavour]()))
