"""Which registry the settings mean: MLflow's own rule, and the adapter built for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.settings import Settings, registry_uri_for
from regpilot.core.registry_port import Unsupported
from regpilot.registry import build_registry
from regpilot.registry.mlflow_registry import MlflowRegistry, _translate
from regpilot.registry.unity_catalog import UnityCatalogRegistry

CASES = [
    # (tracking URI, registry URI, the registry MLflow uses)
    ("databricks", None, "databricks-uc"),
    ("databricks://prod", None, "databricks-uc://prod"),
    ("databricks://scope:prefix", None, "databricks-uc://scope:prefix"),
    ("databricks", "databricks", "databricks"),
    ("databricks", "databricks-uc", "databricks-uc"),
    ("http://127.0.0.1:5000", None, "http://127.0.0.1:5000"),
    ("http://127.0.0.1:5000", "databricks-uc", "databricks-uc"),
    ("sqlite:///mlflow.db", None, "sqlite:///mlflow.db"),
]


@pytest.fixture(autouse=True)
def restore_mlflow_uris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Clear the global tracking/registry URIs adapters set in this process, then restore them."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    # Start from none, whatever other tests of this process set, and put theirs back after.
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "placeholder")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "placeholder")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    yield


@pytest.mark.parametrize(("tracking", "registry", "expected"), CASES)
def test_the_registry_uri_follows_mlflow_s_own_default(tracking, registry, expected):
    from mlflow.tracking._model_registry.utils import _resolve_registry_uri

    assert registry_uri_for(tracking, registry) == expected
    # The same answer as the installed MLflow: fails when MLflow changes its rule.
    assert _resolve_registry_uri(registry, tracking) == expected


@pytest.mark.parametrize(("tracking", "registry", "expected"), CASES)
def test_settings_say_unity_catalog_when_mlflow_would_use_it(tracking, registry, expected):
    settings = Settings(mlflow_tracking_uri=tracking, mlflow_registry_uri=registry)
    assert settings.effective_registry_uri == expected
    assert settings.uses_unity_catalog == expected.startswith("databricks-uc")
    assert settings.uses_workspace_registry == (expected == "databricks")


def test_tracking_uri_databricks_alone_builds_the_unity_catalog_adapter():
    registry = build_registry(Settings(mlflow_tracking_uri="databricks"))
    assert isinstance(registry, UnityCatalogRegistry)
    with pytest.raises(Unsupported, match="no stages"):  # refused before any request
        registry.transition_stage("main.default.model", 1, "Production", False)


def test_the_workspace_registry_has_stages_and_no_aliases():
    registry = build_registry(
        Settings(mlflow_tracking_uri="databricks", mlflow_registry_uri="databricks")
    )
    assert type(registry) is MlflowRegistry
    # Refused before any request (no Databricks host is configured here to answer one).
    with pytest.raises(Unsupported, match="set_registered_model_alias"):
        registry.set_alias("model", "challenger", 1)
    with pytest.raises(Unsupported, match="delete_registered_model_alias"):
        registry.delete_alias("model", "challenger")


def test_mlflow_s_own_unsupported_answer_is_an_unsupported_error_not_a_transient_one():
    from mlflow.store.model_registry.databricks_workspace_model_registry_rest_store import (
        _raise_unsupported_method,
    )

    with pytest.raises(Unsupported, match="Workspace Model Registry"):
        _translate(lambda: _raise_unsupported_method(method="set_registered_model_alias"))
