"""Parse and apply the ops page's query: filters, search, paging and auto-refresh.

Pure: the page hands in its query arguments and gets back a `PageQuery` or a `BadQuery` whose
message says what to fix (the page answers it as a 400), and asks `PageQuery.matches` of each
event or dead letter it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Where deliveries come from (handlers/webhooks/*, the reconcile sweep, the worker itself).
SOURCES = ("runs", "mlflow", "databricks-jobs", "databricks-registry", "reconcile", "worker")
# What became of a delivery: the receiver's answers and the worker's outcomes.
OUTCOMES = ("queued", "processed", "failed", "dead", "duplicate", "ignored", "delivered")
REFRESH_SECONDS = (0, 10, 30, 60)
MAX_TEXT = 200
MAX_CURSOR = 1000
MAX_PAGE = 10_000
# `notice` and `letter` come back from the page's own Retry and Drop redirects.
KNOWN = ("model", "source", "outcome", "q", "before", "page", "refresh", "notice", "letter")


class BadQuery(ValueError):
    """A query argument the page cannot use; the message says which and why."""


@dataclass(frozen=True)
class PageQuery:
    """What the ops page was asked to show."""

    model: str = ""
    source: str = ""
    outcome: str = ""
    search: str = ""
    before: str = ""  # the history entry the events page starts after (newest when empty)
    page: int = 1  # the dead letters' page, 1-based
    refresh: int = 0  # seconds between reloads, 0 for off

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Tell whether an event or dead letter passes the filters and the search.

        `row` has the event record's keys: model (several models join with ","), source,
        outcome, run_id, delivery_id, and `id` for a dead letter.
        """
        if self.model and self.model not in str(row.get("model") or "").split(","):
            return False
        if self.source and row.get("source") != self.source:
            return False
        if self.outcome and row.get("outcome") != self.outcome:
            return False
        if self.search:
            ids = (row.get("run_id"), row.get("delivery_id"), row.get("id"))
            return any(self.search in str(value) for value in ids if value)
        return True

    @property
    def filtered(self) -> bool:
        """Tell whether any filter or search narrows the lists."""
        return bool(self.model or self.source or self.outcome or self.search)

    def link(self, **changes: str | int) -> dict[str, str]:
        """Return the query arguments of this view with `changes`, leaving out empty ones."""
        values: dict[str, str | int] = {
            "model": self.model,
            "source": self.source,
            "outcome": self.outcome,
            "q": self.search,
            "before": self.before,
            "page": self.page if self.page != 1 else "",
            "refresh": self.refresh or "",
            **changes,
        }
        return {key: str(value) for key, value in values.items() if value not in ("", 0)}


def parse_query(args: Mapping[str, str]) -> PageQuery:
    """Return the page query the arguments ask for; raise BadQuery naming a bad one."""
    unknown = sorted(set(args) - set(KNOWN))
    if unknown:
        raise BadQuery(f"unknown query parameter {unknown[0]!r}; known: {', '.join(KNOWN)}")
    source = args.get("source", "")
    if source and source not in SOURCES:
        raise BadQuery(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
    outcome = args.get("outcome", "")
    if outcome and outcome not in OUTCOMES:
        raise BadQuery(f"outcome must be one of {', '.join(OUTCOMES)} (got {outcome!r})")
    _text(args, "letter", MAX_CURSOR)  # only echoed in a notice, but bounded like the rest
    return PageQuery(
        model=_text(args, "model", MAX_TEXT),
        source=source,
        outcome=outcome,
        search=_text(args, "q", MAX_TEXT),
        before=_text(args, "before", MAX_CURSOR),
        page=_number(args, "page", 1, MAX_PAGE, 1),
        refresh=_refresh(args.get("refresh", "")),
    )


def _text(args: Mapping[str, str], name: str, longest: int) -> str:
    value = args.get(name, "").strip()
    if len(value) > longest:
        raise BadQuery(f"{name} is longer than {longest} characters")
    if any(ord(char) < 32 for char in value):
        raise BadQuery(f"{name} contains control characters")
    return value


def _number(args: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    raw = args.get(name, "")
    if raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise BadQuery(f"{name} must be a whole number from {low} to {high} (got {raw[:40]!r})")
    return int(raw)


def _refresh(raw: str) -> int:
    if raw == "":
        return 0
    allowed = ", ".join(map(str, REFRESH_SECONDS))
    if not raw.isascii() or not raw.isdigit() or int(raw) not in REFRESH_SECONDS:
        raise BadQuery(f"refresh must be one of {allowed} seconds (got {raw[:40]!r})")
    return int(raw)
