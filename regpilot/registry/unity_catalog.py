"""MLflow on Unity Catalog (`databricks-uc`): the rules that differ from a workspace/OSS registry.

- No stages: `transition_stage` raises Unsupported (the base adapter already refuses it when
  `capabilities.supports_stages` is False); retention archives with a tag or deletes, never
  with a stage.
- `search_model_versions` takes one condition (`name = ...` or `run_id = ...`), no `order_by`,
  and its results carry no tags and no aliases (MLflow's ModelVersionSearch): every version a
  workflow looks at is read again with `get_model_version`.
- Deleting a version drops its aliases, so a version holding an alias is never deleted, checked
  against the registered model's alias map right before the call.
- A model must have a signature with inputs and outputs; the gate checks it first
  (`capabilities.requires_signature`), and a signature without outputs counts as none.
- Tag keys are snake_case letters, digits, '_' and ' ' (no `. , - = / :`), at most 255
  characters; values at most 1000 characters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from regpilot.core.registry_port import UNITY_CATALOG_CAPABILITIES, ModelVersion, RegistryError
from regpilot.core.tags import MAX_TAG_VALUE, is_safe_tag_key
from regpilot.registry.mlflow_registry import MlflowRegistry, _quote, paged
from regpilot.registry.paging import Pages

MAX_TAGS_PER_CALL = 50  # Unity Catalog allows 50 tags per object
_PAGE = 1000  # the documented maximum page size of model-version listing


def tag_problems(tags: Mapping[str, str]) -> list[str]:
    """Return why Unity Catalog would refuse these version tags (empty when it would not)."""
    problems = []
    if len(tags) > MAX_TAGS_PER_CALL:
        problems.append(f"{len(tags)} tags, Unity Catalog allows {MAX_TAGS_PER_CALL} per object")
    for key, value in tags.items():
        if not is_safe_tag_key(key):
            problems.append(
                f"tag key {key!r}: use letters, digits, '_' or ' ' only, at most 255 characters"
            )
        if len(value) > MAX_TAG_VALUE:
            problems.append(f"tag {key!r}: value longer than {MAX_TAG_VALUE} characters")
    return problems


class UnityCatalogRegistry(MlflowRegistry):
    """The MLflow adapter with Unity Catalog's rules (see the module docstring)."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = "databricks-uc") -> None:
        super().__init__(tracking_uri, registry_uri)
        # Set here, not derived from the URI, so the rules hold whatever registry serves them.
        self.unity_catalog = True
        self.capabilities = UNITY_CATALOG_CAPABILITIES

    # --- logged models --------------------------------------------------------------------

    def _read_mlmodel(self, uri: str) -> dict[str, Any] | None:
        mlmodel = super()._read_mlmodel(uri)
        if mlmodel is None:
            return None
        signature = mlmodel.get("signature")
        if isinstance(signature, dict) and not signature.get("outputs"):
            # Unity Catalog refuses an inputs-only signature: the gate must see no signature.
            return {key: value for key, value in mlmodel.items() if key != "signature"}
        return mlmodel

    # --- versions ---------------------------------------------------------------------------

    def _search(self, filter_string: str, max_results: int = _PAGE) -> Pages[Any]:
        return paged(
            self.client.search_model_versions, filter_string=filter_string, max_results=max_results
        )

    def versions_from_run(self, name: str, run_id: str) -> Sequence[ModelVersion]:
        """Return versions of `name` created from `run_id`, read one by one for their tags."""
        found = self._search(f"run_id = '{_quote(run_id)}'", 100)
        return [self.get_version(name, int(mv.version)) for mv in found if mv.name == name]

    def iter_versions(self, name: str) -> Iterator[ModelVersion]:
        """Yield every version of a model with its tags (search results have none on UC)."""
        self._version_pages = self._search(f"name = '{_quote(name)}'")
        return (self.get_version(name, int(mv.version)) for mv in self._version_pages)

    def recent_versions(self, since_ms: int) -> Iterator[ModelVersion]:
        """Yield versions created since `since_ms`, model by model (UC search has no order_by)."""
        for model in paged(self.client.search_registered_models, max_results=_PAGE):
            for mv in self._search(f"name = '{_quote(model.name)}'"):
                if (getattr(mv, "creation_timestamp", None) or 0) >= since_ms:
                    yield self.get_version(model.name, int(mv.version))

    def refuse_tags(self, tags: Mapping[str, str]) -> None:
        """Refuse all the tags, before any call, if Unity Catalog would reject any of them."""
        problems = tag_problems(tags)
        if problems:
            raise RegistryError("Unity Catalog would refuse these tags: " + "; ".join(problems))

    def delete_version(self, name: str, version: int) -> None:
        """Delete a version unless it holds an alias (deletion would drop the alias)."""
        aliases = self.get_registered_model(name).aliases
        held = sorted(alias for alias, target in aliases.items() if target == version)
        if held:
            raise RegistryError(
                f"refusing to delete {name} version {version}: it holds alias(es) "
                f"{', '.join(held)}, and Unity Catalog deletes a version's aliases with it"
            )
        super().delete_version(name, version)
