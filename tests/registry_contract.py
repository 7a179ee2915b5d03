"""The registry port's contract: checks every adapter and tests/fakes.FakeRegistry must pass.

tests/unit/test_registry_contract.py runs them on the fake (milliseconds);
tests/integration/test_registry_contract.py runs the same on the real MLflow adapter against a
real MLflow server, so the fake cannot drift from what MLflow does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest

from regpilot.core.registry_port import NotFound, Registry, RunInfo, RunPhase, Unsupported


@dataclass
class World:
    """A registry under test and a way to make a finished run with one logged model in it."""

    registry: Registry
    make_run: Callable[[Mapping[str, float]], RunInfo]
    experiment: str

    def fresh_name(self) -> str:
        """Return a registered-model name nobody used yet."""
        return f"contract_{uuid.uuid4().hex[:10]}"

    def register(self, name: str, run: RunInfo, tags: Mapping[str, str] | None = None) -> int:
        """Register the run's logged model under `name`; return the version number."""
        [model] = self.registry.logged_models(run)
        created = self.registry.create_version(
            name, model.uri, run.run_id, dict(tags or {"origin": "contract"}), None
        )
        return created.version


def check_runs_and_logged_models(world: World) -> None:
    """A finished run reads back with its metrics and one READY logged model with an MLmodel."""
    registry = world.registry
    run = world.make_run({"test_accuracy": 0.9})
    read = registry.get_run(run.run_id)
    assert read.phase is RunPhase.FINISHED and read.finished
    assert read.metrics["test_accuracy"] == pytest.approx(0.9)
    assert registry.experiment_name(read.experiment_id) == world.experiment
    [model] = registry.logged_models(read)
    assert model.uri.startswith("models:/") and model.model_id
    assert model.status == "READY" and model.has_mlmodel is True
    registry.set_run_tags(run.run_id, {"validation_status": "PASSED"})
    registry.set_run_tags(run.run_id, {"other": "x"})
    tags = registry.get_run(run.run_id).tags
    assert tags["validation_status"] == "PASSED" and tags["other"] == "x"
    with pytest.raises(NotFound):
        registry.get_run("0" * 32)


def check_missing_things_are_not_found(world: World) -> None:
    """An unknown model has no versions (no error); reading it or its version is NotFound."""
    registry = world.registry
    name = world.fresh_name()
    assert list(registry.iter_versions(name)) == []
    assert registry.versions_from_run(name, "0" * 32) == []
    with pytest.raises(NotFound):
        registry.get_registered_model(name)
    with pytest.raises(NotFound):
        registry.get_version(name, 1)


def check_versions(world: World) -> None:
    """Versions are created with their tags (creating the model), found by run and listed."""
    registry = world.registry
    name = world.fresh_name()
    run = world.make_run({"test_accuracy": 0.9})
    first = world.register(name, run, {"validation_status": "PASSED"})
    second = world.register(name, world.make_run({"test_accuracy": 0.91}))
    assert (first, second) == (1, 2)
    stored = registry.get_version(name, first)
    assert stored.run_id == run.run_id and stored.tags["validation_status"] == "PASSED"
    assert stored.stage is None
    assert [v.version for v in registry.versions_from_run(name, run.run_id)] == [first]
    assert sorted(v.version for v in registry.iter_versions(name)) == [first, second]
    assert registry.pages_read == 1
    registry.set_version_tags(name, first, {"a": "1", "b": "2"})
    tags = registry.get_version(name, first).tags
    assert tags["a"] == "1" and tags["b"] == "2" and tags["validation_status"] == "PASSED"
    registry.set_version_description(name, first, "hello")
    assert registry.get_version(name, first).description == "hello"
    assert registry.get_registered_model(name).name == name


def check_aliases(world: World) -> None:
    """Aliases move, read back on the model and the version, and delete idempotently.

    Where the registry has none, every alias call is Unsupported, a permanent answer.
    """
    registry = world.registry
    name = world.fresh_name()
    version = world.register(name, world.make_run({"test_accuracy": 0.9}))
    if not registry.capabilities.supports_aliases:
        with pytest.raises(Unsupported):
            registry.set_alias(name, "challenger", version)
        with pytest.raises(Unsupported):
            registry.delete_alias(name, "challenger")
        assert registry.get_registered_model(name).aliases == {}
        return
    registry.set_alias(name, "challenger", version)
    assert registry.get_registered_model(name).aliases == {"challenger": version}
    assert "challenger" in registry.get_version(name, version).aliases
    registry.delete_alias(name, "challenger")
    registry.delete_alias(name, "challenger")  # already gone: done
    assert registry.get_registered_model(name).aliases == {}


def check_stages(world: World) -> None:
    """A stage move can archive the stage's previous holder; without stages it is Unsupported."""
    registry = world.registry
    name = world.fresh_name()
    first = world.register(name, world.make_run({"test_accuracy": 0.9}))
    second = world.register(name, world.make_run({"test_accuracy": 0.91}))
    if not registry.capabilities.supports_stages:
        with pytest.raises(Unsupported):
            registry.transition_stage(name, first, "Staging", False)
        return
    moved = registry.transition_stage(name, first, "Staging", False)
    assert moved.stage == "Staging"
    registry.transition_stage(name, second, "Staging", True)
    assert registry.get_version(name, first).stage == "Archived"
    assert registry.get_version(name, second).stage == "Staging"


def check_delete_version(world: World) -> None:
    """Deleting a version removes it (and its aliases); deleting it again counts as done."""
    registry = world.registry
    name = world.fresh_name()
    first = world.register(name, world.make_run({"test_accuracy": 0.9}))
    second = world.register(name, world.make_run({"test_accuracy": 0.91}))
    if registry.capabilities.supports_aliases:
        registry.set_alias(name, "old", first)
    registry.delete_version(name, first)
    registry.delete_version(name, first)
    with pytest.raises(NotFound):
        registry.get_version(name, first)
    assert [v.version for v in registry.iter_versions(name)] == [second]
    assert "old" not in registry.get_registered_model(name).aliases


CHECKS = [
    check_runs_and_logged_models,
    check_missing_things_are_not_found,
    check_versions,
    check_aliases,
    check_stages,
    check_delete_version,
]
