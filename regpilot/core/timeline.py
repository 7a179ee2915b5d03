"""An alias's timeline from the decision records: every move, and who held it at an instant.

Pure functions over the records `RedisStore.decisions()` returns (`{at, kind, trigger, alias,
version, previous, ...}`). The alias moves regpilot records are `alias` (challenger moves, and
any alias set by hand), `promotion` (champion), `rollback` and `alias_deleted`
(regpilot/workflows/aliases.py). The timeline reaches back as far as the records kept
(REGPILOT_DECISIONS_MAX_PER_MODEL per model).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

ALIAS_KINDS = frozenset({"alias", "promotion", "rollback", "alias_deleted"})
_BY_HAND = frozenset({"cli", "ops"})
_SAME_WORK_SECONDS = 600.0


class BadInstant(ValueError):
    """A time that is not ISO 8601."""


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: from which version to which (None: unset), when, by whom, why."""

    at: float
    alias: str
    from_version: int | None
    to_version: int | None
    by: str
    why: str
    kind: str

    def as_dict(self) -> dict[str, Any]:
        """Return the move as plain data, with its time in ISO 8601 UTC."""
        return {**asdict(self), "at_iso": iso(self.at)}


@dataclass(frozen=True)
class Holding:
    """Which version held an alias at an instant, and since when (None: before the records)."""

    version: int | None
    since: float | None
    move: AliasMove | None


def iso(epoch: float) -> str:
    """Return an epoch time as ISO 8601 UTC to the second."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat(timespec="seconds")


def parse_instant(text: str) -> float:
    """Return epoch seconds of an ISO 8601 time; no zone means UTC (`2026-11-30T12:00Z`)."""
    raw = text.strip()
    try:
        parsed = dt.datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
    except ValueError as exc:
        raise BadInstant(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-30T12:00Z or 2026-11-30)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and str(value).strip() else None
    except (TypeError, ValueError):
        return None


def who(trigger: Mapping[str, Any]) -> str:
    """Return who made a decision: the person, else the source and its delivery."""
    if trigger.get("actor"):
        return f"{trigger.get('source', 'cli')}:{trigger['actor']}"
    parts = [str(trigger.get("source") or "?")]
    if trigger.get("delivery_id"):
        parts.append(str(trigger["delivery_id"]))
    return ":".join(parts)


def _why(record: Mapping[str, Any], registered: Mapping[int, Mapping[str, Any]]) -> str:
    kind = record.get("kind")
    trigger = record.get("trigger") or {}
    version = _int(record.get("version"))
    if kind == "rollback":
        return f"rolled back: v{record.get('previous')} gave the alias back to v{version}"
    if kind == "alias_deleted":
        return "alias removed by hand"
    if kind == "alias" and version is not None and version in registered:
        # The same work (same trigger) registered this version just before: the alias
        # followed the gate, even when a person ran that work (`regpilot register-model`).
        registration = registered[version]
        if (
            registration.get("trigger") == trigger
            and 0
            <= float(record.get("at") or 0) - float(registration.get("at") or 0)
            <= _SAME_WORK_SECONDS
        ):
            run = registration.get("run_id")
            return f"passed its gate{f' (run {run})' if run else ''}; newest passing version"
    if trigger.get("source") in _BY_HAND or trigger.get("actor"):
        return "promoted by hand" if kind == "promotion" else "set by hand"
    if kind == "promotion":
        return "auto-promoted: beat the champion by the policy's margin"
    return "passed its gate; newest passing version"


def alias_moves(records: Iterable[Mapping[str, Any]], alias: str) -> list[AliasMove]:
    """Return every recorded move of `alias`, oldest first."""
    ordered = sorted(records, key=lambda r: float(r.get("at") or 0))
    registered: dict[int, Mapping[str, Any]] = {}
    moves = []
    for record in ordered:
        registered_version = _int(record.get("version"))
        if record.get("kind") == "registration" and registered_version is not None:
            registered[registered_version] = record
        if record.get("kind") not in ALIAS_KINDS or record.get("alias") != alias:
            continue
        deleted = record.get("kind") == "alias_deleted"
        moves.append(
            AliasMove(
                at=float(record.get("at") or 0),
                alias=alias,
                from_version=_int(record.get("version" if deleted else "previous")),
                to_version=None if deleted else _int(record.get("version")),
                by=who(record.get("trigger") or {}),
                why=_why(record, registered),
                kind=str(record.get("kind")),
            )
        )
    return moves


def holder_at(moves: Sequence[AliasMove], instant: float) -> Holding:
    """Return which version held the alias at `instant` (moves oldest first).

    Before the first recorded move the holder is that move's `from_version` (it held the alias
    already; since when the records do not say), or nobody.
    """
    current: AliasMove | None = None
    for move in moves:
        if move.at > instant:
            break
        current = move
    if current is not None:
        return Holding(current.to_version, current.at, current)
    if moves:
        return Holding(moves[0].from_version, None, None)
    return Holding(None, None, None)


@dataclass(frozen=True)
class Judgement:
    """The gate's latest verdict on one candidate: a version, or a run that registered nothing."""

    version: int | None
    run_id: str | None
    verdict: str
    failed_checks: tuple[Mapping[str, Any], ...]
    at: float
    by: str


def judgements(records: Iterable[Mapping[str, Any]]) -> list[Judgement]:
    """Return the latest gate verdict per candidate, newest first.

    A verdict on a run is joined to the version that run registered, so each version shows why
    it got (or did not get) its aliases; a failed run keeps its run id as the only name it has.
    """
    ordered = sorted(records, key=lambda r: float(r.get("at") or 0))
    version_of_run = {
        str(r["run_id"]): _int(r.get("version"))
        for r in ordered
        if r.get("kind") == "registration" and r.get("run_id")
    }
    latest: dict[tuple[int | None, str | None], Judgement] = {}
    for record in ordered:
        if record.get("kind") != "gate" or record.get("verdict") not in ("PASSED", "FAILED"):
            continue
        run_id = record.get("run_id") or None
        version = _int(record.get("version"))
        if version is None and run_id is not None:
            version = version_of_run.get(str(run_id))
        checks = record.get("checks") or []
        failed = tuple(c for c in checks if isinstance(c, Mapping) and c.get("result") == "FAILED")
        key = (version, None) if version is not None else (None, run_id)
        latest[key] = Judgement(
            version,
            run_id,
            str(record["verdict"]),
            failed,
            float(record.get("at") or 0),
            who(record.get("trigger") or {}),
        )
    return sorted(latest.values(), key=lambda j: j.at, reverse=True)
