"""Plain-data records: value objects whose JSON form (task results, `--json`) is their fields."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any


class PlainRecord:
    """Mixin for a dataclass whose plain-data form is its fields, in declaration order.

    Task results, `--json` output and recorded decisions take `as_dict()`; one definition keeps
    them all converted the same way (nested dataclasses and lists included).
    """

    def as_dict(self) -> dict[str, Any]:
        """Return the record's fields as plain data."""
        record: Any = self  # only ever mixed into dataclasses
        return asdict(record)
