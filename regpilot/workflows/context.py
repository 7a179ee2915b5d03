"""What a workflow works with: the registry, the policy, the store, and who triggered it."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from config.policy import Policy
from config.settings import Settings
from regpilot.core.naming import resolve_name
from regpilot.core.registry_port import Registry
from regpilot.core.tags import LAST_DECISION, decision_record
from regpilot.evaluation.spec import EvaluationResult, EvaluationSpec
from regpilot.observability.metrics import count_decision
from regpilot.stores.redis_store import RedisStore

log = logging.getLogger("regpilot.workflows")

# Measure a model URI on a spec, tagging its evaluation run; regpilot.evaluation.evaluate_model
# in a worker or the CLI, a plain function in unit tests.
Evaluate = Callable[[str, EvaluationSpec, dict[str, str]], EvaluationResult]
# Queue the evaluation of one candidate on the evaluation queue: (model name, run id, model uri,
# version); the run path gives the run and model URI, the version path the version.
QueueEvaluation = Callable[[str, str | None, str | None, int | None], None]


@dataclass(frozen=True)
class Trigger:
    """Who or what asked for this work; recorded with every decision."""

    source: str
    delivery_id: str | None = None
    actor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the trigger as plain data."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class Context:
    """The collaborators of a workflow."""

    registry: Registry
    policy: Policy
    settings: Settings
    store: RedisStore | None = None
    trigger: Trigger = field(default_factory=lambda: Trigger("cli"))
    # Queues notifications of a recorded decision (regpilot/queue/notify.py); never raises.
    notify: Callable[[str, dict[str, Any]], None] | None = None
    # With `evaluate`, a model with an `evaluation` block is measured here (the evaluation task,
    # the CLI); without it but with `queue_evaluation` (the registry task) it is queued.
    evaluate: Evaluate | None = None
    queue_evaluation: QueueEvaluation | None = None
    # Evaluations done in this unit of work, by (model, subject): measured before the model's
    # lock is taken and reused under it, failures included.
    measured: dict[tuple[str, str], EvaluationResult] = field(default_factory=dict)

    def full_name(self, name: str) -> str:
        """Return the registered-model name as the registry spells it."""
        return resolve_name(
            name,
            unity_catalog=self.settings.uses_unity_catalog,
            catalog=self.settings.uc_catalog,
            schema=self.settings.uc_schema,
        )

    def lock(self, model: str) -> AbstractContextManager[None]:
        """Return the model's lock (no-op without a store, e.g. a CLI run without Redis)."""
        return self.store.model_lock(model) if self.store is not None else nullcontext()

    def decision_tags(self, kind: str, **details: Any) -> dict[str, str]:
        """Return the `last_decision` version tag for a decision, to write with other tags."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return {LAST_DECISION: decision_record(kind, now, self.trigger.as_dict(), details)}

    def record(self, model: str, kind: str, *, identity: str | None = None, **details: Any) -> None:
        """Record a decision in the history and the log, once per `identity` when given.

        The identity names what was decided (`gate:<run>:<model uri>`, `alias:<name>:<version>`),
        so work redone after a redelivery or by reconciliation leaves one record, not two, and
        notifies once.
        """
        entry = {"kind": kind, "trigger": self.trigger.as_dict(), **details}
        first = True
        if self.store is not None:
            first = self.store.record_decision(
                model, entry, f"{kind}:{identity}" if identity else None
            )
        if first:
            count_decision(model, kind, details)
            log.info(
                "decision.%s",
                kind,
                extra={"model": model, **{k: v for k, v in details.items() if k in _LOGGED}},
            )
            if self.notify is not None:
                self.notify(model, entry)


_LOGGED = {"version", "run_id", "verdict", "alias", "action"}
