"""One readable line for a verdict: what the MLflow UI shows without opening any JSON."""

from __future__ import annotations

from collections.abc import Iterable

from regpilot.core.gate import Check, Verdict
from regpilot.core.tags import MAX_SUMMARY_VALUE


def _passed_phrase(check: Check) -> str:
    if check.expected == "present":
        return check.name
    return f"{check.name} {check.actual} {check.expected}"


def _failed_phrase(check: Check) -> str:
    if check.actual == "missing":
        return f"{check.name} missing"
    if check.actual == "nan":
        return f"{check.name} is NaN"
    return f"{check.name} {check.actual}, needs {check.expected}"


def _logged_names(logged_metrics: Iterable[str], limit: int = 8) -> str:
    names = sorted(set(logged_metrics))
    if not names:
        return "run logged no metrics"
    shown = ", ".join(names[:limit])
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"run logged {shown}{more}"


def fit_line(text: str, limit: int = MAX_SUMMARY_VALUE) -> str:
    """Return `text` on one line within `limit` characters, cut at a word with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def validation_summary(
    verdict: Verdict, logged_metrics: Iterable[str] = (), limit: int = MAX_SUMMARY_VALUE
) -> str:
    """Return the verdict as one line: status, the failing checks first, and what the run logged.

    "PASSED 3/3: test_accuracy 0.93 >= 0.85, ..." or
    "FAILED: test_precision missing; run logged precision, f1_macro".
    """
    total = len(verdict.checks)
    if total == 0:
        return f"{verdict.status}: the policy has no checks for this model"
    passed = total - len(verdict.failures)
    if verdict.passed:
        body = ", ".join(_passed_phrase(c) for c in verdict.checks)
        return fit_line(f"{verdict.status} {passed}/{total}: {body}", limit)
    body = ", ".join(_failed_phrase(c) for c in verdict.failures)
    missing_metric = any(
        c.actual == "missing" and c.expected != "present" for c in verdict.failures
    )
    if missing_metric:
        body += "; " + _logged_names(logged_metrics)
    return fit_line(f"{verdict.status}: {body}", limit)


def version_description(verdict: Verdict | None, run_id: str) -> str:
    """Return the description regpilot gives a version it registers when the user gave none."""
    if verdict is None:
        return f"Registered by regpilot from run {run_id} without validation (skipped on request)."
    return (
        f"Registered by regpilot from run {run_id}: validation {verdict.status} "
        f"({len(verdict.checks) - len(verdict.failures)}/{len(verdict.checks)} checks). "
        "See the validation_summary and validation_report tags."
    )
