"""Human output of the registry commands: aligned tables, versions, verdicts, progress."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

import click


def when(ms: int | float | None) -> str:
    """Return a millisecond timestamp as ISO 8601 UTC, or '-'."""
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")


def number(value: float | None) -> str:
    """Return a metric value for a table: up to 6 significant digits, '-' when absent."""
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    return f"{value:.6g}"


def signed(value: float | None) -> str:
    """Return a delta with its sign, '-' when there is none."""
    return "-" if value is None else f"{value:+.6g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: int = 0) -> None:
    """Print rows under headers, each column as wide as its widest cell."""
    cells = [[str(c) for c in headers]] + [
        ["-" if c in (None, "") else str(c) for c in r] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    pad = " " * indent
    for index, row in enumerate(cells):
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo(pad + line.rstrip())
        if index == 0:
            click.echo(pad + "  ".join("-" * width for width in widths))


def verdict_table(checks: Sequence[dict[str, Any]], indent: int = 2) -> None:
    """Print a gate verdict: one line per check with expected, actual, PASSED/FAILED, reason."""
    if not checks:
        click.echo(" " * indent + "(the policy has no checks for this model)")
        return
    if any("measured" in c or "logged" in c for c in checks):
        # The measured gate: logged and measured side by side, and the champion on the same rows.
        table(
            ("check", "expected", "measured", "logged", "champion", "result", "reason"),
            [
                (
                    c["name"],
                    c["expected"],
                    _number(c.get("measured"), c["actual"]),
                    _number(c.get("logged"), ""),
                    _number(c.get("champion"), ""),
                    c["result"],
                    c["reason"],
                )
                for c in checks
            ],
            indent,
        )
        return
    table(
        ("check", "expected", "actual", "result", "reason"),
        [(c["name"], c["expected"], c["actual"], c["result"], c["reason"]) for c in checks],
        indent,
    )


def _number(value: Any, fallback: str) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else fallback


def version_dict(version: Any) -> dict[str, Any]:
    """Return a registry ModelVersion as plain data for --json."""
    return {
        "name": version.name,
        "version": version.version,
        "stage": version.stage,
        "status": version.status,
        "aliases": list(version.aliases),
        "created": when(version.creation_ms),
        "run_id": version.run_id,
        "source": version.source,
        "description": version.description,
        "tags": dict(sorted(version.tags.items())),
    }


def print_version(version: Any) -> None:
    """Print a version's details: name, version, stage, status, aliases, times, run, tags."""
    data = version_dict(version)
    for label, key in (
        ("name", "name"),
        ("version", "version"),
        ("stage", "stage"),
        ("status", "status"),
        ("aliases", "aliases"),
        ("created", "created"),
        ("run id", "run_id"),
        ("source", "source"),
        ("description", "description"),
    ):
        value = data[key]
        if isinstance(value, list):
            value = ", ".join(value)
        click.echo(f"{label + ':':<13}{value if value not in (None, '') else '-'}")
    click.echo("tags:" if data["tags"] else "tags:        -")
    for key, value in data["tags"].items():
        click.echo(f"  {key}: {value}")


def progress(label: str) -> Callable[[int, int], None]:
    """Return a progress callback that prints `label: done/total` to stderr, about 20 times."""

    def report(done: int, total: int) -> None:
        step = max(1, total // 20)
        if done == total or done % step == 0:
            click.echo(f"{label}: {done}/{total}", err=True)

    return report
