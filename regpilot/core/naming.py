"""Registered model names: plain MLflow names and Unity Catalog `catalog.schema.model`."""

from __future__ import annotations

import re

_UC_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,254}$")
_OSS_NAME = re.compile(r"^[^\x00-\x1f/\\%]{1,256}$")


class InvalidModelName(ValueError):
    """A model name the registry would refuse; raised before any call is made."""


def resolve_name(name: str, *, unity_catalog: bool, catalog: str, schema: str) -> str:
    """Return the full registered-model name, or raise InvalidModelName.

    On Unity Catalog a short name becomes `catalog.schema.name` and a three-level name is taken
    as is; anything else is rejected. Elsewhere the name is used as given.
    """
    cleaned = name.strip()
    if not cleaned:
        raise InvalidModelName("model name is empty")
    if not unity_catalog:
        if not _OSS_NAME.match(cleaned) or cleaned != name:
            raise InvalidModelName(
                f"invalid model name {name!r}: no leading/trailing spaces, '/', '\\', '%', "
                "or control characters; at most 256 characters"
            )
        return cleaned
    parts = cleaned.split(".")
    if len(parts) == 1:
        parts = [catalog, schema, cleaned]
    if len(parts) != 3:
        raise InvalidModelName(
            f"invalid Unity Catalog name {name!r}: use 'model' or 'catalog.schema.model'"
        )
    for part in parts:
        if not _UC_PART.match(part):
            raise InvalidModelName(
                f"invalid Unity Catalog name part {part!r} in {name!r}: letters, digits, "
                "'_' and '-' only"
            )
    return ".".join(parts)


_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_ALIAS = re.compile(r"^[vV][0-9]+$")


def alias_problem(alias: str) -> str | None:
    """Return why the registry would refuse an alias name, or None if it is acceptable.

    MLflow reserves `latest` (any case) and version-like `v<digits>`; Unity Catalog and MLflow
    accept letters, digits, '_' and '-' up to 255 characters.
    """
    if not _ALIAS.match(alias):
        return f"invalid alias {alias!r}: letters, digits, '_' and '-' only, 1 to 255 characters"
    if alias.lower() == "latest":
        return "the alias 'latest' is reserved by MLflow"
    if _VERSION_ALIAS.match(alias):
        return f"the alias {alias!r} looks like a version (v<digits>), which MLflow reserves"
    return None
