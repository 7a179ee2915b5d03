"""What each registry supports is declared, and an "unsupported" answer is permanent."""

from __future__ import annotations

import pytest

from regpilot.core.registry_port import (
    OSS_CAPABILITIES,
    UNITY_CATALOG_CAPABILITIES,
    WORKSPACE_CAPABILITIES,
    Unsupported,
    registry_kind,
)


@pytest.mark.parametrize(
    ("tracking", "registry", "expected"),
    [
        ("http://mlflow:5000", None, OSS_CAPABILITIES),
        ("databricks", None, UNITY_CATALOG_CAPABILITIES),  # MLflow 3's default there
        ("databricks://profile", None, UNITY_CATALOG_CAPABILITIES),
        ("databricks", "databricks-uc", UNITY_CATALOG_CAPABILITIES),
        ("databricks", "databricks", WORKSPACE_CAPABILITIES),
        ("http://mlflow:5000", "databricks://profile", WORKSPACE_CAPABILITIES),
    ],
)
def test_registry_kind_follows_mlflows_rule(tracking, registry, expected):
    assert registry_kind(tracking, registry) == expected.kind


def test_the_capabilities_differ_where_the_registries_do():
    assert (WORKSPACE_CAPABILITIES.supports_aliases, WORKSPACE_CAPABILITIES.supports_stages) == (
        False,
        True,
    )
    assert not UNITY_CATALOG_CAPABILITIES.supports_stages
    assert UNITY_CATALOG_CAPABILITIES.requires_signature
    assert OSS_CAPABILITIES.supports_aliases and OSS_CAPABILITIES.supports_stages


def test_mlflows_own_workspace_refusal_becomes_unsupported():
    # The exact exception MLflow's Workspace Model Registry store raises for an alias call
    # (no error code: it would otherwise be filed as transient and retried to a dead letter).
    from mlflow.store.model_registry.databricks_workspace_model_registry_rest_store import (
        _raise_unsupported_method,
    )

    from regpilot.registry.mlflow_registry import _translate

    with pytest.raises(Unsupported, match="set_registered_model_alias"):
        _translate(lambda: _raise_unsupported_method(method="set_registered_model_alias"))


def test_the_workspace_adapter_refuses_aliases_before_any_call():
    from regpilot.registry.mlflow_registry import MlflowRegistry

    registry = MlflowRegistry("http://127.0.0.1:1", registry_uri="databricks")
    assert registry.capabilities == WORKSPACE_CAPABILITIES
    with pytest.raises(Unsupported):
        registry.set_alias("m", "challenger", 1)  # port 1: a network call would fail otherwise


def test_a_task_records_unsupported_as_a_result_and_never_retries_it():
    from tasks.base import PERMANENT_ERRORS, TRANSIENT_ERRORS, RegpilotTask
    from tasks.celery_app import app

    assert issubclass(Unsupported, PERMANENT_ERRORS)
    assert not issubclass(Unsupported, TRANSIENT_ERRORS)
    calls = []

    @app.task(base=RegpilotTask, bind=True, name="tests.unsupported_once")
    def refuse(self: RegpilotTask) -> None:
        calls.append(self.request.retries)
        raise Unsupported("Method 'set_registered_model_alias' is unsupported")

    result = refuse.apply()
    assert calls == [0]
    assert result.get()["outcome"] == "failed" and "Unsupported" in result.get()["detail"]


@pytest.mark.parametrize(
    ("tracking", "registry", "unity_catalog"),
    [
        ("databricks", None, True),
        ("databricks", "databricks", False),
        ("http://mlflow:5000", "databricks-uc", True),
        ("http://mlflow:5000", None, False),
    ],
)
def test_settings_follow_the_same_rule(tracking, registry, unity_catalog):
    from config.settings import Settings

    settings = Settings(mlflow_tracking_uri=tracking, mlflow_registry_uri=registry)
    assert settings.uses_unity_catalog is unity_catalog
