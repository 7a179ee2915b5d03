"""The MLflow internals regpilot relies on (regpilot/registry/mlflow_internals.py) still exist.

Each test fails when an MLflow release renames, re-signs or changes the behaviour of one of
them; widening the mlflow pin is then a change to mlflow_internals.py alone.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.store.artifact.artifact_repo import ArtifactRepository
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

from regpilot.registry import mlflow_internals


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_registry_client_is_mlflow_s_model_registry_client() -> None:
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    server = "http://127.0.0.1:1"  # never contacted: building the client sends nothing
    client = MlflowClient(tracking_uri=server, registry_uri=server)
    registry = mlflow_internals.registry_client(client)
    assert isinstance(registry, ModelRegistryClient)
    assert registry is mlflow_internals.registry_client(client)  # built once per client


@pytest.mark.parametrize(
    ("method", "parameters"),
    [
        ("set_model_version_tag", ["self", "name", "version", "key", "value"]),
        ("set_registered_model_alias", ["self", "name", "alias", "version"]),
        (
            "transition_model_version_stage",
            ["self", "name", "version", "stage", "archive_existing_versions"],
        ),
    ],
)
def test_the_registry_client_methods_regpilot_calls_keep_their_signature(
    method: str, parameters: list[str]
) -> None:
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    assert _parameters(getattr(ModelRegistryClient, method)) == parameters


@pytest.mark.parametrize(
    "repository", [ArtifactRepository, HttpArtifactRepository, MlflowArtifactsRepository]
)
def test_download_file_keeps_its_signature(repository: type[ArtifactRepository]) -> None:
    assert _parameters(repository._download_file) == ["self", "remote_file_path", "local_path"]


def test_download_file_copies_one_file_of_an_artifact_folder(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts" / "model"
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n", encoding="utf-8")
    local = tmp_path / "copy"
    mlflow_internals.download_file(folder.as_uri(), "MLmodel", str(local))
    assert local.read_text(encoding="utf-8") == "flavors: {}\n"
