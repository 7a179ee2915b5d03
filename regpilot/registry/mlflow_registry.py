"""The MLflow adapter: OSS MLflow servers and Databricks (workspace registry or Unity Catalog)."""

from __future__ import annotations

import functools
import json
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import requests
import yaml
from mlflow import MlflowClient
from mlflow.entities import RunTag
from mlflow.environment_variables import (
    MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    MLFLOW_HTTP_REQUEST_TIMEOUT,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from config.settings import Settings
from regpilot.core.registry_port import (
    OSS_CAPABILITIES,
    UNITY_CATALOG_CAPABILITIES,
    WORKSPACE_CAPABILITIES,
    LoggedModel,
    ModelVersion,
    NotFound,
    RegisteredModel,
    RegistryError,
    RunInfo,
    TransientRegistryError,
    Unsupported,
    registry_kind,
)
from regpilot.registry import mlflow_internals
from regpilot.registry.paging import Pages

log = logging.getLogger(__name__)
T = TypeVar("T")

_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "ENDPOINT_NOT_FOUND"}
_PERMANENT = {
    "INVALID_PARAMETER_VALUE",
    "BAD_REQUEST",
    "RESOURCE_ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "INVALID_STATE",
    "CUSTOMER_UNAUTHORIZED",
    "FEATURE_DISABLED",
}
# How MLflow's workspace-registry store refuses what that registry lacks (aliases): it raises
# before sending anything, with no error code of its own (INTERNAL_ERROR).
_UNSUPPORTED = "is unsupported for models in the Workspace Model Registry"
_PAGE = 1000
_CAPABILITIES = {
    c.kind: c for c in (OSS_CAPABILITIES, UNITY_CATALOG_CAPABILITIES, WORKSPACE_CAPABILITIES)
}
_EXPERIMENT_CHUNK = 100  # search_runs takes at most 100 experiment ids


def _translate(call: Callable[[], T]) -> T:
    """Run an MLflow call, mapping its errors to the port's permanent/transient errors."""
    try:
        return call()
    except MlflowException as exc:
        code = getattr(exc, "error_code", "INTERNAL_ERROR")
        if _UNSUPPORTED in str(exc.message):
            raise Unsupported(exc.message) from exc
        if code in _NOT_FOUND:
            raise NotFound(exc.message) from exc
        if code in _PERMANENT:
            raise RegistryError(f"{code}: {exc.message}") from exc
        raise TransientRegistryError(f"{code}: {exc.message}") from exc
    except (requests.RequestException, ConnectionError, TimeoutError) as exc:
        raise TransientRegistryError(str(exc)) from exc


def _stage(raw: str | None) -> str | None:
    return None if raw in (None, "", "None") else raw


def paged(search: Callable[..., Any], *args: Any, **kwargs: Any) -> Pages[Any]:
    """Return every page of an MLflow search (a PagedList with `.token`), errors translated."""

    def fetch(token: str | None) -> tuple[Sequence[Any], str | None]:
        page = _translate(functools.partial(search, *args, page_token=token, **kwargs))
        return page, page.token or None

    return Pages(fetch)


def experiment_names(client: MlflowClient) -> dict[str, str]:
    """Return every experiment's name by id."""
    return {e.experiment_id: e.name for e in paged(client.search_experiments, max_results=1000)}


def search_runs(client: MlflowClient, experiment_ids: Sequence[str], query: str) -> Iterator[Any]:
    """Yield the runs matching `query` in any of the experiments (searched 100 at a time)."""
    ids = list(experiment_ids)
    for start in range(0, len(ids), _EXPERIMENT_CHUNK):
        chunk = ids[start : start + _EXPERIMENT_CHUNK]
        yield from paged(client.search_runs, chunk, filter_string=query, max_results=500)


def _to_run(run: Any, experiment_name: str | None) -> RunInfo:
    outputs = getattr(run, "outputs", None)
    model_ids = (o.model_id for o in (getattr(outputs, "model_outputs", None) or []))
    return RunInfo(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        experiment_name=experiment_name,
        status=run.info.status,
        start_ms=run.info.start_time,
        end_ms=run.info.end_time,
        metrics=dict(run.data.metrics),
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        model_ids=tuple(dict.fromkeys(m for m in model_ids if m)),
    )


def _to_version(mv: Any) -> ModelVersion:
    return ModelVersion(
        name=mv.name,
        version=int(mv.version),
        run_id=mv.run_id or None,
        source=mv.source,
        stage=_stage(getattr(mv, "current_stage", None)),
        status=getattr(mv, "status", None),
        description=mv.description or None,
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        tags=dict(mv.tags or {}),
        creation_ms=getattr(mv, "creation_timestamp", None),
    )


class MlflowRegistry:
    """Read and write an MLflow registry through MlflowClient."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        # Artifact URIs like mlflow-artifacts:/ resolve against the global tracking URI.
        mlflow.set_tracking_uri(tracking_uri)
        if registry_uri:
            mlflow.set_registry_uri(registry_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        # The registry MLflow picks when none is given (`databricks` means Unity Catalog).
        self.capabilities = _CAPABILITIES[registry_kind(tracking_uri, registry_uri)]
        self.unity_catalog = self.capabilities is UNITY_CATALOG_CAPABILITIES
        self._version_pages: Pages[Any] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowRegistry:
        """Build the adapter; MLflow's own HTTP retries are cut short, Celery owns retrying."""
        MLFLOW_HTTP_REQUEST_MAX_RETRIES.set(str(settings.mlflow_http_max_retries))
        MLFLOW_HTTP_REQUEST_TIMEOUT.set(str(settings.mlflow_http_timeout))
        return cls(settings.mlflow_tracking_uri, settings.mlflow_registry_uri)

    # --- runs and logged models -------------------------------------------------------------

    def get_run(self, run_id: str) -> RunInfo:
        """Return a run with its metrics, params, tags and logged model ids."""
        return _to_run(_translate(lambda: self.client.get_run(run_id)), experiment_name=None)

    def experiment_name(self, experiment_id: str) -> str | None:
        """Return an experiment's name (used for the policy's name mapping)."""
        experiment = _translate(lambda: self.client.get_experiment(experiment_id))
        return str(experiment.name) if experiment is not None else None

    def logged_models(self, run: RunInfo) -> Sequence[LoggedModel]:
        """Return the models a run logged: MLflow 3 logged models, else `runs:/` artifact dirs."""
        model_ids = list(run.model_ids)
        if not model_ids:
            found = _translate(
                lambda: self.client.search_logged_models(
                    experiment_ids=[run.experiment_id],
                    filter_string=f"source_run_id = '{run.run_id}'",
                    max_results=50,
                )
            )
            model_ids = [m.model_id for m in found]
        if model_ids:
            return [self._logged_model(model_id) for model_id in model_ids]
        return self._artifact_models(run.run_id)

    def _logged_model(self, model_id: str) -> LoggedModel:
        model = _translate(lambda: self.client.get_logged_model(model_id))
        metrics = {m.key: float(m.value) for m in (model.metrics or [])}
        found = self._read_mlmodel(f"{model.artifact_location.rstrip('/')}/MLmodel")
        mlmodel = found or {}
        return LoggedModel(
            model_id=model.model_id,
            name=model.name,
            uri=f"models:/{model.model_id}",
            metrics=metrics,
            params=dict(model.params or {}),
            flavor=_flavor(mlmodel),
            has_signature=bool(mlmodel.get("signature")) if mlmodel else None,
            features=_features(mlmodel),
            creation_ms=model.creation_timestamp,
            status=str(model.status) if model.status is not None else None,
            has_mlmodel=found is not None,  # without one the model cannot be loaded
        )

    def _artifact_models(self, run_id: str) -> list[LoggedModel]:
        entries = _translate(lambda: self.client.list_artifacts(run_id))
        models = []
        for entry in entries:
            if not entry.is_dir:
                continue
            children = _translate(functools.partial(self.client.list_artifacts, run_id, entry.path))
            if any(c.path.endswith("/MLmodel") or c.path == "MLmodel" for c in children):
                mlmodel = self._read_mlmodel(f"runs:/{run_id}/{entry.path}/MLmodel") or {}
                models.append(
                    LoggedModel(
                        model_id=None,
                        name=entry.path,
                        uri=f"runs:/{run_id}/{entry.path}",
                        flavor=_flavor(mlmodel),
                        has_signature=bool(mlmodel.get("signature")) if mlmodel else None,
                        features=_features(mlmodel),
                        has_mlmodel=True,  # listed only because the folder holds one
                    )
                )
        return models

    def _read_mlmodel(self, uri: str) -> dict[str, Any] | None:
        """Return the parsed MLmodel file, {} when unreadable, None when there is none."""
        try:
            text = _translate(lambda: _load_text(uri))
        except NotFound:
            return None
        except RegistryError as exc:
            if isinstance(exc, TransientRegistryError):
                raise
            return None
        # libyaml's safe loader when PyYAML has it: the pure-Python one takes over 1 ms per
        # MLmodel, a noticeable share of an event's own (non-MLflow) time.
        loaded = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return loaded if isinstance(loaded, dict) else {}

    def set_run_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set several run tags in one call."""
        _translate(
            lambda: self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        )

    # --- registered models and versions ----------------------------------------------------

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its alias map."""
        model = _translate(lambda: self.client.get_registered_model(name))
        aliases = {alias: int(version) for alias, version in (model.aliases or {}).items()}
        return RegisteredModel(model.name, aliases, dict(model.tags or {}), model.description)

    def get_version(self, name: str, version: int) -> ModelVersion:
        """Return one model version."""
        return _to_version(_translate(lambda: self.client.get_model_version(name, str(version))))

    def versions_from_run(self, name: str, run_id: str) -> Sequence[ModelVersion]:
        """Return versions of `name` created from `run_id` (idempotent registration looks here)."""
        found = _translate(
            lambda: self.client.search_model_versions(
                filter_string=f"name = '{_quote(name)}' and run_id = '{_quote(run_id)}'",
                max_results=100,
            )
        )
        return [_to_version(mv) for mv in found]

    @property
    def pages_read(self) -> int:
        """Return how many pages the last `iter_versions` read (retention reports it)."""
        return self._version_pages.pages_read if self._version_pages else 0

    def iter_versions(self, name: str) -> Iterator[ModelVersion]:
        """Yield every version of a model, page by page (bounded pages, linear in versions)."""
        self._version_pages = paged(
            self.client.search_model_versions,
            filter_string=f"name = '{_quote(name)}'",
            max_results=_PAGE,
        )
        return map(_to_version, self._version_pages)

    def recent_versions(self, since_ms: int) -> Iterator[ModelVersion]:
        """Yield versions created since `since_ms`, newest first (stops at the first older one)."""
        newest_first = paged(
            self.client.search_model_versions,
            order_by=["creation_timestamp DESC"],
            max_results=200,
        )
        for mv in newest_first:
            if (mv.creation_timestamp or 0) < since_ms:
                return
            yield _to_version(mv)

    def unjudged_runs(self, since_ms: int) -> Iterator[RunInfo]:
        """Yield finished runs since `since_ms` that logged a model and carry no verdict tag."""
        experiments = experiment_names(self.client)
        query = (
            f"attributes.status = 'FINISHED' and attributes.end_time >= {int(since_ms)} "
            "and tags.validation_status IS NULL"
        )
        for run in search_runs(self.client, sorted(experiments), query):
            info = _to_run(run, experiments.get(run.info.experiment_id))
            if info.model_ids:
                yield info

    def create_version(
        self,
        name: str,
        source: str,
        run_id: str,
        tags: Mapping[str, str],
        description: str | None,
    ) -> ModelVersion:
        """Create a version with its tags in one call, creating the registered model if missing."""
        self.refuse_tags(tags)
        model_id = source.split("/", 1)[1] if source.startswith("models:/") else None

        def create() -> Any:
            return self.client.create_model_version(
                name,
                source,
                run_id=run_id,
                tags=dict(tags),
                description=description,
                await_creation_for=0,
                model_id=model_id,
            )

        try:
            return _to_version(_translate(create))
        except NotFound:
            try:
                _translate(lambda: self.client.create_registered_model(name))
            except RegistryError as exc:
                if "RESOURCE_ALREADY_EXISTS" not in str(exc):
                    raise
            return _to_version(_translate(create))

    def refuse_tags(self, tags: Mapping[str, str]) -> None:
        """Refuse tags this registry would reject, before any call (an MLflow server takes any)."""

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        """Set tags on a model version: one REST call per tag, plus one look-up in all.

        MlflowClient.set_model_version_tag looks the registered model up before every tag (to
        refuse prompts); the first tag goes through it, the rest straight to the registry client.
        """
        self.refuse_tags(tags)
        if not tags:
            return
        (first_key, first_value), *rest = tags.items()
        _translate(
            lambda: self.client.set_model_version_tag(name, str(version), first_key, first_value)
        )
        registry_client = mlflow_internals.registry_client(self.client)
        for key, value in rest:
            _translate(
                functools.partial(
                    registry_client.set_model_version_tag, name, str(version), key, value
                )
            )

    def set_version_description(self, name: str, version: int, description: str) -> None:
        """Replace a model version's description."""
        _translate(lambda: self.client.update_model_version(name, str(version), description))

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a version: one REST call.

        MlflowClient.set_registered_model_alias reads the registered model first (to refuse
        prompts); the workflows set aliases only on models they have just read or registered,
        so the call goes straight to the registry client (the server validates the alias).
        """
        self._require_aliases("set_registered_model_alias")
        registry_client = mlflow_internals.registry_client(self.client)
        _translate(
            functools.partial(registry_client.set_registered_model_alias, name, alias, str(version))
        )

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias; removing one that is already gone counts as done."""
        self._require_aliases("delete_registered_model_alias")
        try:
            _translate(lambda: self.client.delete_registered_model_alias(name, alias))
        except NotFound:
            return

    def _require_aliases(self, method: str) -> None:
        """Refuse an alias call, as MLflow would but without a call, where there are no aliases."""
        if not self.capabilities.supports_aliases:
            raise Unsupported(
                f"Method '{method}' {_UNSUPPORTED}: it has stages, not aliases "
                "(regpilot maps challenger/champion to stages there; set "
                "MLFLOW_REGISTRY_URI=databricks-uc for Unity Catalog)"
            )

    def transition_stage(
        self, name: str, version: int, stage: str, archive_existing: bool
    ) -> ModelVersion:
        """Move a version to a legacy stage (not on Unity Catalog)."""
        if not self.capabilities.supports_stages:
            raise Unsupported(
                "Unity Catalog has no stages: use aliases instead "
                f"(regpilot alias set {name} champion {version})"
            )
        # Straight to the registry client: MlflowClient would read the registered model first
        # (to refuse prompts), one more REST call per archived version.
        registry_client = mlflow_internals.registry_client(self.client)
        return _to_version(
            _translate(
                lambda: registry_client.transition_model_version_stage(
                    name, str(version), stage, archive_existing_versions=archive_existing
                )
            )
        )

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version; deleting one already gone counts as done."""
        try:
            _translate(lambda: self.client.delete_model_version(name, str(version)))
        except NotFound:
            return


def _load_text(uri: str) -> str:
    """Return a text artifact; one GET when the MLflow server serves the artifacts.

    mlflow.artifacts.load_text lists the parent folder first (to tell a file from a folder),
    a second REST call for every MLmodel read. Artifacts the tracking server proxies
    (mlflow-artifacts:/, http) are fetched directly (mlflow_internals.download_file); other
    stores go through load_text.
    """
    if uri.split(":", 1)[0] not in ("mlflow-artifacts", "http", "https"):
        return str(mlflow.artifacts.load_text(uri))
    folder, _, filename = uri.rpartition("/")
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / filename
        try:
            mlflow_internals.download_file(folder, filename, str(local))
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise MlflowException(
                    f"no artifact at {uri}", error_code=RESOURCE_DOES_NOT_EXIST
                ) from exc
            raise
        return local.read_text(encoding="utf-8")


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _flavor(mlmodel: Mapping[str, Any]) -> str | None:
    flavors = mlmodel.get("flavors") or {}
    if not isinstance(flavors, dict):
        return None
    specific = [name for name in flavors if name != "python_function"]
    if specific:
        return str(specific[0])
    return "python_function" if "python_function" in flavors else None


def _features(mlmodel: Mapping[str, Any]) -> tuple[str, ...]:
    signature = mlmodel.get("signature") or {}
    raw_inputs = signature.get("inputs") if isinstance(signature, dict) else None
    if not raw_inputs:
        return ()
    try:
        inputs = json.loads(raw_inputs) if isinstance(raw_inputs, str) else raw_inputs
    except ValueError:
        return ()
    columns = [col for col in inputs if isinstance(col, dict)]
    named = tuple(str(col["name"]) for col in columns if "name" in col)
    if named:
        return named
    # Unnamed tensor inputs: describe them, so the metadata still says what the model takes.
    return tuple(
        f"{col.get('type', 'tensor')}:{(col.get('tensor-spec') or {}).get('shape', '')}"
        for col in columns
    )
