"""One readable line for a verdict: what the MLflow UI shows without opening any JSON."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from regpilot.core.gate import Check, Verdict
from regpilot.core.tags import MAX_SUMMARY_VALUE, PASSED


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


def closest_names(name: str, candidates: Iterable[str], count: int = 3) -> list[str]:
    """Return up to `count` of `candidates` that look like a misspelling of `name`, best first."""
    return difflib.get_close_matches(name, sorted(set(candidates)), n=count, cutoff=0.6)


def explain_check(check: Mapping[str, Any], logged_metrics: Sequence[str] | None) -> str:
    """Return one sentence on a check of a recorded verdict, with what the run did log.

    "required test_precision missing; the run logged precision, f1_macro (did you mean precision?)"
    """
    name, actual, expected = str(check["name"]), str(check["actual"]), str(check["expected"])
    passed = check.get("result") == PASSED
    if passed:
        return (
            f"{name} {actual} {expected}: passed" if expected != "present" else f"{name}: present"
        )
    if actual == "missing" and expected != "present" and not name.startswith("champion:"):
        if logged_metrics is None:
            return (
                f"required {name} missing (what the run logged is unknown: MLflow did not answer)"
            )
        if not logged_metrics:
            return f"required {name} missing; the run logged no metrics"
        sentence = f"required {name} missing; the run logged {', '.join(sorted(logged_metrics))}"
        near = closest_names(name, logged_metrics)
        return sentence + (f" (did you mean {' or '.join(near)}?)" if near else "")
    reason = str(check.get("reason") or "failed")
    return f"{name} {actual}, needs {expected}: {reason}"
