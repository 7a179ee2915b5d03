"""The two MLflow internals the adapter relies on, each behind one function.

Both save one REST call per use, and each event's cost is its MLflow calls
(docs/performance-notes): MLflow has no public API with the same cost.

- `registry_client` returns `MlflowClient._get_registry_client()`, MLflow's ModelRegistryClient.
  Its `set_model_version_tag`, `set_registered_model_alias` and `transition_model_version_stage`
  send one request each; MlflowClient's public methods of those names first read the registered
  model (to refuse prompts), a second request per call.
- `download_file` calls `ArtifactRepository._download_file(remote_file_path, local_path)`: one
  GET. The public `download_artifacts` and `mlflow.artifacts.load_text` list the folder first
  (to tell a file from a folder), a second request per MLmodel read.

tests/unit/test_mlflow_internals.py checks the names, signatures and behaviour these functions
depend on, so an MLflow release that changes them fails there: widening the mlflow pin in
pyproject.toml is then one line, or a change to this module alone.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository


def registry_client(client: MlflowClient) -> Any:
    """Return the client's ModelRegistryClient (one request per registry call, no prompt check)."""
    return client._get_registry_client()  # type: ignore[no-untyped-call]


def download_file(folder_uri: str, filename: str, local_path: str) -> None:
    """Download one file of an artifact folder to `local_path` with a single request."""
    get_artifact_repository(folder_uri)._download_file(filename, local_path)
