"""Tag names users rely on, and fitting values into the registry's limits."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

VALIDATION_STATUS = "validation_status"
VALIDATION_REPORT = "validation_report"
# One readable line (verdict and reason) for the MLflow UI, which cuts long tag values.
VALIDATION_SUMMARY = "validation_summary"
SOURCE_RUN_ID = "source_run_id"
REGISTRATION_DATE = "registration_date"
FRAMEWORK = "framework"
METADATA = "metadata"
REGISTERED_BY = "registered_by"
VALIDATION_SKIPPED = "validation_skipped"
RETENTION_STATUS = "retention_status"
RETENTION_HOLD = "retention_hold"
PREVIOUS_CHAMPION = "previous_champion"
ROLLED_BACK = "rolled_back"  # on a demoted champion: never auto-promote it again
MODEL_NAME_RUN_TAG = "regpilot_model_name"
LAST_DECISION = "last_decision"
# The MLflow run that measured the model on its policy's dataset, and which rows it used.
EVALUATION_RUN_ID = "evaluation_run_id"
EVALUATION_DATASET_DIGEST = "evaluation_dataset_digest"

PASSED = "PASSED"
FAILED = "FAILED"
REGISTERED_BY_US = "regpilot"

# Tags regpilot owns: a user's own tags may not set them (a forged validation_status would lie).
RESERVED_TAGS = frozenset(
    {
        VALIDATION_STATUS,
        VALIDATION_REPORT,
        VALIDATION_SUMMARY,
        SOURCE_RUN_ID,
        REGISTRATION_DATE,
        FRAMEWORK,
        METADATA,
        REGISTERED_BY,
        VALIDATION_SKIPPED,
        RETENTION_STATUS,
        PREVIOUS_CHAMPION,
        LAST_DECISION,
        EVALUATION_RUN_ID,
        EVALUATION_DATASET_DIGEST,
    }
)

# Unity Catalog is the strictest registry we write to; these keys work everywhere.
MAX_TAG_VALUE = 1000
# The summary is read in lists and tables; 250 characters stay readable and fit every registry.
MAX_SUMMARY_VALUE = 250
_UC_SAFE_KEY = re.compile(r"^[A-Za-z0-9_ ]{1,255}$")


def is_safe_tag_key(key: str) -> bool:
    """Tell whether a tag key is accepted by OSS MLflow and Unity Catalog alike."""
    return bool(_UC_SAFE_KEY.match(key))


def compact_json(value: Any) -> str:
    """Serialise without spaces, so more fits into a tag."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def fit_json(value: Mapping[str, Any], limit: int = MAX_TAG_VALUE) -> str:
    """Serialise a mapping as JSON within `limit` characters, dropping detail, never cutting JSON.

    Lists are shortened from the end and long strings clipped; the result stays valid JSON and
    carries `"truncated": true` when anything was dropped.
    """
    text = compact_json(value)
    if len(text) <= limit:
        return text
    work: dict[str, Any] = dict(value)
    work["truncated"] = True
    # Shrink the largest member first until it fits.
    for _ in range(10_000):
        text = compact_json(work)
        if len(text) <= limit:
            return text
        key = max(
            (k for k in work if k != "truncated"),
            key=lambda k: len(compact_json(work[k])),
            default=None,
        )
        if key is None:
            break
        work[key] = _shrink(work[key])
        if work[key] in ({}, [], "", None):
            del work[key]
    return compact_json({"truncated": True})


def _shrink(item: Any) -> Any:
    if isinstance(item, dict):
        if not item:
            return {}
        keys = sorted(item)
        return {k: item[k] for k in keys[: max(0, len(keys) - max(1, len(keys) // 4))]}
    if isinstance(item, list):
        return item[: max(0, len(item) - max(1, len(item) // 4))]
    if isinstance(item, str):
        return item[: len(item) // 2]
    return None


def decision_record(
    kind: str, at: str, trigger: Mapping[str, Any], details: Mapping[str, Any]
) -> str:
    """Return the `last_decision` tag value: what was decided, when, by whom, within limits."""
    by = ":".join(str(v) for k, v in trigger.items() if k in ("source", "actor", "delivery_id"))
    return fit_json({"kind": kind, "at": at, "by": by, **details})
