"""Unity Catalog rules, run on the real test MLflow server.

A Unity Catalog registry cannot be reached from here, so UnityCatalogRegistry is pointed at the
session's OSS MLflow server: these tests check regpilot's side of the rules (names, no stages,
signature first, tags within limits, never deleting an aliased version), not Databricks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from config.policy import parse_policy
from config.settings import Settings, settings_environment
from regpilot.cli.main import main
from regpilot.core.registry_port import RegistryError, Unsupported
from regpilot.registry import build_registry
from regpilot.registry.unity_catalog import UnityCatalogRegistry
from regpilot.workflows.context import Context
from regpilot.workflows.retention import enforce_retention
from regpilot.workflows.run_completed import process_run_completed
from regpilot.workflows.snapshot import read_snapshot
from regpilot.workflows.validation import NoModelName
from tests.support import PASSING, derive, sklearn_requirements, train_run

pytestmark = pytest.mark.integration

POLICY = """
defaults:
  retention: {keep: 10}
models:
  uc_archive: {retention: {keep: 1, action: archive}}
  uc_delete: {retention: {keep: 1, action: delete}}
"""


@pytest.fixture(autouse=True)
def restore_registry_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the global registry URI (and its env var) the adapters set in this process."""
    from mlflow.tracking._model_registry import utils

    monkeypatch.setattr(utils, "_registry_uri", utils._registry_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "placeholder")  # records the original state
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")


@pytest.fixture()
def uc(mlflow_server: str, settings: Settings) -> Iterator[Context]:
    schema = f"s_{uuid.uuid4().hex[:8]}"  # a schema per test: names never collide
    yield Context(
        registry=UnityCatalogRegistry(mlflow_server, registry_uri=mlflow_server),
        policy=parse_policy(POLICY),
        # Only the naming reads the registry URI from the settings here.
        settings=derive(settings, mlflow_registry_uri="databricks-uc", uc_schema=schema),
    )


def _unsigned_run(model_name: str, *, inputs_only: bool = False) -> str:
    import mlflow
    import pandas as pd
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("regpilot-uc-tests")
    features = pd.DataFrame({"a": [0.0, 1.0, 0.2, 0.9], "b": [1.0, 0.0, 0.3, 0.7]})
    model = LogisticRegression(max_iter=20).fit(features, [0, 1, 0, 1])
    signature = ModelSignature(inputs=Schema([ColSpec("double", "a"), ColSpec("double", "b")]))
    with mlflow.start_run() as run:
        mlflow.log_metrics(PASSING)
        mlflow.sklearn.log_model(
            model,
            name=model_name,
            signature=signature if inputs_only else None,
            pip_requirements=sklearn_requirements(),
        )
        return str(run.info.run_id)


def _versions(client: Any, name: str) -> list[int]:
    return sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))


def test_databricks_uc_registry_uri_selects_the_unity_catalog_rules(settings):
    registry = build_registry(derive(settings, mlflow_registry_uri="databricks-uc"))
    assert isinstance(registry, UnityCatalogRegistry)
    assert registry.capabilities.supports_stages is False
    assert registry.capabilities.requires_signature is True
    plain = build_registry(settings)
    assert not isinstance(plain, UnityCatalogRegistry)
    assert plain.capabilities.requires_signature is False


def test_short_names_become_catalog_schema_model_and_bad_ones_are_refused(uc, client):
    started_ms = int(time.time() * 1000) - 1000
    run_id = train_run(PASSING, model_name="uc_named")
    [outcome] = process_run_completed(uc, run_id, None)
    full = f"main.{uc.settings.uc_schema}.uc_named"
    assert outcome.model_name == full and outcome.verdict.passed
    stored = client.get_model_version(full, str(outcome.version))
    assert stored.tags["validation_status"] == "PASSED"
    # The reconciliation sweep's listing works without order_by, model by model, with tags.
    [recent] = [v for v in uc.registry.recent_versions(started_ms) if v.name == full]
    assert recent.tags["validation_status"] == "PASSED" and "challenger" in recent.aliases
    assert '["signature","present","present","PASSED"]' in stored.tags["validation_report"]
    with pytest.raises(NoModelName, match=r"catalog\.schema\.model"):
        process_run_completed(uc, run_id, "only.two")
    with pytest.raises(NoModelName, match="letters, digits"):
        process_run_completed(uc, run_id, "main.bad schema.m")


@pytest.mark.parametrize("inputs_only", [False, True], ids=["no-signature", "inputs-only"])
def test_signature_is_required_and_checked_first(uc, client, inputs_only):
    name = f"uc_unsigned_{'in' if inputs_only else 'none'}"
    run_id = _unsigned_run(name, inputs_only=inputs_only)
    # The policy does not ask for a signature; Unity Catalog does, so the gate does.
    assert uc.policy.for_model(name).require_signature is False
    [outcome] = process_run_completed(uc, run_id, None)
    assert not outcome.verdict.passed and outcome.version is None
    first = outcome.verdict.checks[0]
    assert (first.name, first.actual, first.passed) == ("signature", "missing", False)
    assert "Unity Catalog requires one" in first.reason
    assert all(check.passed for check in outcome.verdict.checks[1:])  # metrics pass
    assert client.search_model_versions(f"name = '{outcome.model_name}'") == []


def test_stages_are_refused_with_a_clear_error(uc, mlflow_server, settings):
    [outcome] = process_run_completed(uc, train_run(PASSING, model_name="uc_staged"), None)
    with pytest.raises(Unsupported, match="Unity Catalog has no stages"):
        uc.registry.transition_stage(outcome.model_name, outcome.version, "Staging", False)
    env = settings_environment(derive(settings, mlflow_registry_uri="databricks-uc"))
    result = CliRunner().invoke(main, ["transition", "uc_staged", "1", "Staging"], env=env)
    assert result.exit_code == 1
    assert "Unity Catalog" in result.output and "alias" in result.output
    assert "Traceback" not in result.output


def test_retention_archives_with_a_tag_never_a_stage(uc, client):
    versions = [
        process_run_completed(uc, train_run(PASSING, model_name="uc_archive"), None)[0].version
        for _ in range(3)
    ]
    name = f"main.{uc.settings.uc_schema}.uc_archive"
    assert versions == [1, 2, 3]
    for version in (1, 2):
        stored = client.get_model_version(name, str(version))
        assert stored.tags["retention_status"] == "archived"
        assert stored.current_stage == "None"
    newest = client.get_model_version(name, "3")
    assert "retention_status" not in newest.tags and "challenger" in newest.aliases
    # Archived versions are read back with their tags (search results on UC carry none), so a
    # second pass finds nothing left to do.
    assert enforce_retention(uc, read_snapshot(uc, name)).applied == ()


def test_retention_never_deletes_a_version_holding_an_alias(uc, client):
    name = f"main.{uc.settings.uc_schema}.uc_delete"
    first = process_run_completed(uc, train_run(PASSING, model_name="uc_delete"), None)[0]
    uc.registry.set_alias(name, "champion", first.version)
    for _ in range(2):
        process_run_completed(uc, train_run(PASSING, model_name="uc_delete"), None)
    # keep=1 with delete: v2 went, v1 stays because it holds `champion`, v3 is the newest.
    assert _versions(client, name) == [1, 3]
    with pytest.raises(RegistryError, match="holds alias"):
        uc.registry.delete_version(name, 1)
    assert _versions(client, name) == [1, 3]


def test_tags_outside_unity_catalog_limits_are_refused_before_any_write(uc, client):
    [outcome] = process_run_completed(uc, train_run(PASSING, model_name="uc_tags"), None)
    name, version = outcome.model_name, outcome.version
    with pytest.raises(RegistryError, match=r"'bad\.key'"):
        uc.registry.set_version_tags(name, version, {"good_key": "x", "bad.key": "y"})
    with pytest.raises(RegistryError, match="longer than 1000"):
        uc.registry.set_version_tags(name, version, {"good_key": "x" * 1001})
    tags = client.get_model_version(name, str(version)).tags
    assert "good_key" not in tags and "bad.key" not in tags
    uc.registry.set_version_tags(name, version, {"good_key": "x"})
    assert client.get_model_version(name, str(version)).tags["good_key"] == "x"
