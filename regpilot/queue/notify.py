"""Queue the notifications of a recorded decision: one delivery task per subscribed destination.

Called by `Context.record` for a decision recorded for the first time, and by the worker when a
task becomes a dead letter. A notification that cannot be queued is logged and dropped: it never
fails, delays for long or undoes the registry decision it reports.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from config.policy import Policy
from regpilot.core.notifications import build_event, event_type_for
from regpilot.queue.names import NOTIFY

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("regpilot.notifications")


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Notifier:
    """Turn a recorded decision into notification deliveries on the queue; never raise."""

    def __init__(
        self,
        celery: Celery,
        queue: str,
        policy: Policy,
        *,
        clock: Callable[[], str] = _now_iso,
    ) -> None:
        self.celery = celery
        self.queue = queue
        self.policy = policy
        self.clock = clock

    def __call__(self, model: str, decision: dict[str, Any]) -> None:
        """Queue one `regpilot.notify` task per destination that wants this decision."""
        try:
            self._queue(model, decision)
        except Exception as exc:  # the broker or anything else: the decision stands regardless
            log.warning(
                "notify.enqueue_failed",
                extra={"model": model, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )

    def _queue(self, model: str, decision: dict[str, Any]) -> None:
        policy = self.policy.for_model(model)
        if not policy.notifications:
            return
        event_type = event_type_for(
            str(decision.get("kind")), decision, challenger_alias=policy.aliases.challenger
        )
        if event_type is None:
            return
        wanted = [name for name, dest in policy.notifications.items() if dest.wants(event_type)]
        if not wanted:
            return
        event = build_event(event_type, f"evt_{uuid.uuid4().hex}", self.clock(), model, decision)
        for destination in wanted:
            self.celery.send_task(
                NOTIFY.name,
                args=NOTIFY.arguments(model, destination, event),
                kwargs={},
                task_id=f"notify-{event['id']}-{destination}",
                queue=self.queue,
                retry=False,
            )
            log.info(
                "notify.queued",
                extra={"model": model, "event": event_type, "destination": destination},
            )
