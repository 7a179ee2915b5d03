"""Registry adapters: the only modules that import mlflow or databricks-sdk."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings
    from regpilot.core.registry_port import Registry


def build_registry(settings: Settings) -> Registry:
    """Return the registry adapter the settings point at (imports mlflow lazily)."""
    from regpilot.registry.mlflow_registry import MlflowRegistry

    if settings.uses_unity_catalog:
        from regpilot.registry.unity_catalog import UnityCatalogRegistry

        return UnityCatalogRegistry.from_settings(settings)
    return MlflowRegistry.from_settings(settings)
