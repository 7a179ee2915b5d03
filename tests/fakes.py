"""An in-memory registry that honours the registry port exactly, for fast workflow tests.

`FakeRegistry` answers as the real adapters do: NotFound for what does not exist, Unsupported
for what its capabilities rule out (aliases on the workspace registry, stages on Unity
Catalog), deleting something already gone counts as done. It counts every port call in
`calls`, so a test can guard how many registry calls an event makes. The contract tests in
tests/unit/test_registry_contract.py run against it and (marked integration) against the real
MLflow adapter, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from regpilot.core.registry_port import (
    OSS_CAPABILITIES,
    UNITY_CATALOG_CAPABILITIES,
    WORKSPACE_CAPABILITIES,
    LoggedModel,
    ModelVersion,
    NotFound,
    RegisteredModel,
    RegistryCapabilities,
    RunInfo,
    Unsupported,
)

STAGES = ("None", "Staging", "Production", "Archived")
PAGE = 1000  # the adapters' page size for iter_versions


@dataclass
class _Model:
    name: str
    aliases: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    next_version: int = 1


def _now_ms() -> int:
    return int(time.time() * 1000)


class FakeRegistry:
    """The registry port in memory (see the module docstring)."""

    def __init__(self, capabilities: RegistryCapabilities = OSS_CAPABILITIES) -> None:
        self.capabilities = capabilities
        self.pages_read = 0
        self.calls: Counter[str] = Counter()
        self.runs: dict[str, RunInfo] = {}
        self.models_of_run: dict[str, list[LoggedModel]] = {}
        self.experiments: dict[str, str] = {}
        self.models: dict[str, _Model] = {}
        self._ids = itertools.count(1)
        self._clock = itertools.count(_now_ms())

    # --- building a world (not part of the port) --------------------------------------------

    @classmethod
    def oss(cls) -> FakeRegistry:
        """Return a fake MLflow OSS registry: aliases and stages."""
        return cls(OSS_CAPABILITIES)

    @classmethod
    def unity_catalog(cls) -> FakeRegistry:
        """Return a fake Unity Catalog: aliases, no stages, a signature required."""
        return cls(UNITY_CATALOG_CAPABILITIES)

    @classmethod
    def workspace(cls) -> FakeRegistry:
        """Return a fake Databricks Workspace Model Registry: stages, no aliases."""
        return cls(WORKSPACE_CAPABILITIES)

    def add_run(
        self,
        metrics: Mapping[str, float],
        *,
        status: str = "FINISHED",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        experiment: str = "training",
        models: Sequence[LoggedModel] | None = None,
        model_name: str = "model",
        model_status: str | None = "READY",
        has_mlmodel: bool | None = True,
        has_signature: bool | None = True,
    ) -> RunInfo:
        """Add a run and its logged model(s) (one READY model with an MLmodel by default)."""
        run_id = f"run{next(self._ids):04d}"
        experiment_id = next(
            (k for k, v in self.experiments.items() if v == experiment),
            str(len(self.experiments) + 1),
        )
        self.experiments[experiment_id] = experiment
        if models is None:
            model_id = f"m-{run_id}"
            models = [
                LoggedModel(
                    model_id=model_id,
                    name=model_name,
                    uri=f"models:/{model_id}",
                    flavor="sklearn",
                    has_signature=has_signature,
                    creation_ms=next(self._clock),
                    status=model_status,
                    has_mlmodel=has_mlmodel,
                )
            ]
        started = next(self._clock)
        run = RunInfo(
            run_id=run_id,
            experiment_id=experiment_id,
            experiment_name=None,
            status=status,
            start_ms=started,
            end_ms=None if status in ("RUNNING", "SCHEDULED") else next(self._clock),
            metrics=dict(metrics),
            params=dict(params or {}),
            tags=dict(tags or {}),
            model_ids=tuple(m.model_id for m in models if m.model_id),
        )
        self.runs[run_id] = run
        self.models_of_run[run_id] = list(models)
        return run

    def finish_run(self, run_id: str, status: str = "FINISHED") -> None:
        """End a run (what the training script does after the webhook came early)."""
        self.runs[run_id] = dataclasses.replace(
            self.runs[run_id], status=status, end_ms=next(self._clock)
        )

    def set_stage_directly(self, name: str, version: int, stage: str) -> None:
        """Move a version's stage behind regpilot's back (a person in the UI)."""
        model = self._model(name)
        model.versions[version] = dataclasses.replace(model.versions[version], stage=stage)

    # --- runs and logged models ---------------------------------------------------------------

    def get_run(self, run_id: str) -> RunInfo:
        """Return a run, or raise NotFound."""
        self.calls["get_run"] += 1
        try:
            return self.runs[run_id]
        except KeyError:
            raise NotFound(f"Run '{run_id}' not found") from None

    def experiment_name(self, experiment_id: str) -> str | None:
        """Return an experiment's name, or raise NotFound."""
        self.calls["experiment_name"] += 1
        try:
            return self.experiments[experiment_id]
        except KeyError:
            raise NotFound(f"experiment {experiment_id} not found") from None

    def logged_models(self, run: RunInfo) -> Sequence[LoggedModel]:
        """Return the models a run logged."""
        self.calls["logged_models"] += 1
        if run.run_id not in self.runs:
            raise NotFound(f"Run '{run.run_id}' not found")
        return list(self.models_of_run.get(run.run_id, []))

    def set_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set run tags."""
        self.calls["set_run_tags"] += 1
        run = self.get_run(run_id)
        self.calls["get_run"] -= 1  # an internal look-up, not a port call
        self.runs[run_id] = dataclasses.replace(run, tags={**run.tags, **tags})

    # --- registered models and versions -----------------------------------------------------

    def _model(self, name: str) -> _Model:
        try:
            return self.models[name]
        except KeyError:
            raise NotFound(f"Registered Model with name={name} not found") from None

    def _version(self, name: str, version: int) -> ModelVersion:
        model = self._model(name)
        try:
            found = model.versions[version]
        except KeyError:
            raise NotFound(f"Model Version (name={name}, version={version}) not found") from None
        held = tuple(sorted(a for a, v in model.aliases.items() if v == version))
        return dataclasses.replace(found, aliases=held)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its alias map."""
        self.calls["get_registered_model"] += 1
        model = self._model(name)
        return RegisteredModel(model.name, dict(model.aliases), dict(model.tags))

    def get_version(self, name: str, version: int) -> ModelVersion:
        """Return one version with its aliases."""
        self.calls["get_version"] += 1
        return self._version(name, version)

    def versions_from_run(self, name: str, run_id: str) -> Sequence[ModelVersion]:
        """Return the versions of `name` created from `run_id`."""
        self.calls["versions_from_run"] += 1
        model = self.models.get(name)
        if model is None:
            return []
        return [self._version(name, n) for n, v in model.versions.items() if v.run_id == run_id]

    def iter_versions(self, name: str) -> Iterator[ModelVersion]:
        """Yield every version; like MLflow's search, a missing model has no versions."""
        self.calls["iter_versions"] += 1
        model = self.models.get(name)
        numbers = sorted(model.versions) if model is not None else []
        self.pages_read = max(1, -(-len(numbers) // PAGE))
        for number in numbers:
            # Like search results on a registry without aliases: the alias lists are empty.
            yield dataclasses.replace(self._version(name, number), aliases=())

    def recent_versions(self, since_ms: int) -> Iterator[ModelVersion]:
        """Yield versions created since `since_ms`, newest first."""
        self.calls["recent_versions"] += 1
        found = [
            self._version(m.name, n)
            for m in self.models.values()
            for n, v in m.versions.items()
            if (v.creation_ms or 0) >= since_ms
        ]
        yield from sorted(found, key=lambda v: v.creation_ms or 0, reverse=True)

    def unjudged_runs(self, since_ms: int) -> Iterator[RunInfo]:
        """Yield finished runs since `since_ms` with a logged model and no verdict tag."""
        self.calls["unjudged_runs"] += 1
        for run in self.runs.values():
            if (
                run.status == "FINISHED"
                and (run.end_ms or 0) >= since_ms
                and "validation_status" not in run.tags
                and self.models_of_run.get(run.run_id)
            ):
                yield dataclasses.replace(
                    run, experiment_name=self.experiments.get(run.experiment_id)
                )

    def create_version(
        self, name: str, source: str, run_id: str, tags: Mapping[str, str], description: str | None
    ) -> ModelVersion:
        """Create a version with its tags, creating the registered model if missing."""
        self.calls["create_version"] += 1
        model = self.models.setdefault(name, _Model(name))
        number = model.next_version
        model.next_version += 1
        version = ModelVersion(
            name=name,
            version=number,
            run_id=run_id or None,
            source=source,
            stage=None,
            status="READY",
            description=description or None,
            aliases=(),
            tags=dict(tags),
            creation_ms=next(self._clock),
        )
        model.versions[number] = version
        return version

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        """Set tags on a version."""
        self.calls["set_version_tags"] += 1
        current = self._version(name, version)
        self.models[name].versions[version] = dataclasses.replace(
            current, tags={**current.tags, **tags}, aliases=()
        )

    def set_version_description(self, name: str, version: int, description: str) -> None:
        """Replace a version's description."""
        self.calls["set_version_description"] += 1
        current = self._version(name, version)
        self.models[name].versions[version] = dataclasses.replace(
            current, description=description, aliases=()
        )

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a version (Unsupported where the registry has no aliases)."""
        self.calls["set_alias"] += 1
        if not self.capabilities.supports_aliases:
            raise Unsupported(
                "Method 'set_registered_model_alias' is unsupported for models in the "
                "Workspace Model Registry"
            )
        self._version(name, version)
        self.models[name].aliases[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias; one already gone counts as done."""
        self.calls["delete_alias"] += 1
        if not self.capabilities.supports_aliases:
            raise Unsupported(
                "Method 'delete_registered_model_alias' is unsupported for models in the "
                "Workspace Model Registry"
            )
        self._model(name).aliases.pop(alias, None)

    def transition_stage(
        self, name: str, version: int, stage: str, archive_existing: bool
    ) -> ModelVersion:
        """Move a version to a stage (Unsupported on Unity Catalog)."""
        self.calls["transition_stage"] += 1
        if not self.capabilities.supports_stages:
            raise Unsupported("Unity Catalog has no stages: use aliases instead")
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        model = self._model(name)
        self._version(name, version)
        if archive_existing and stage in ("Staging", "Production"):
            for number, other in list(model.versions.items()):
                if number != version and other.stage == stage:
                    model.versions[number] = dataclasses.replace(other, stage="Archived")
        model.versions[version] = dataclasses.replace(
            model.versions[version], stage=None if stage == "None" else stage
        )
        return self._version(name, version)

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version (its aliases go with it); one already gone counts as done."""
        self.calls["delete_version"] += 1
        model = self.models.get(name)
        if model is None or version not in model.versions:
            return
        del model.versions[version]
        model.aliases = {a: v for a, v in model.aliases.items() if v != version}


class FakeStore:
    """The two things a workflow asks of the Redis store: decision records and model locks."""

    def __init__(self) -> None:
        self.history: dict[str, list[dict[str, Any]]] = {}
        self._identities: set[tuple[str, str]] = set()
        self.locked: list[str] = []
        self.evaluations: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.digests: dict[str, str] = {}

    def record_decision(
        self, model: str, decision: dict[str, Any], identity: str | None = None
    ) -> bool:
        """Record a decision once per identity, newest first; False when already recorded."""
        if identity is not None:
            if (model, identity) in self._identities:
                return False
            self._identities.add((model, identity))
        self.history.setdefault(model, []).insert(0, {"model": model, **decision})
        return True

    def decisions(self, model: str, limit: int = 50) -> list[dict[str, Any]]:
        """Return a model's decision records, newest first."""
        return self.history.get(model, [])[:limit]

    def evaluation(self, model: str, subject: str, digest: str) -> dict[str, Any] | None:
        """Return a cached evaluation, as RedisStore does."""
        return self.evaluations.get((model, subject, digest))

    def cache_evaluation(
        self, model: str, subjects: list[str], digest: str, result: dict[str, Any]
    ) -> None:
        """Cache an evaluation under each subject, as RedisStore does."""
        for subject in subjects:
            self.evaluations[(model, subject, digest)] = dict(result)

    def dataset_digest_for(self, dataset_key: str) -> str | None:
        """Return the digest remembered for a dataset key."""
        return self.digests.get(dataset_key)

    def remember_dataset_digest(self, dataset_key: str, digest: str) -> None:
        """Remember a dataset key's digest."""
        self.digests[dataset_key] = digest

    @contextmanager
    def model_lock(self, model: str, wait: float | None = None) -> Iterator[None]:
        """Hold the model's lock (refusing to take it twice, as a Redis lock would block)."""
        if model in self.locked:
            raise AssertionError(f"lock on {model} taken twice")
        self.locked.append(model)
        try:
            yield
        finally:
            self.locked.remove(model)
