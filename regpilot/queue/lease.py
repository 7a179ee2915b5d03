"""Keep a live worker's tasks from being redelivered on Redis: renew their visibility lease.

kombu's Redis transport emulates acknowledgements: a delivered message is recorded in the
`unacked_index` sorted set with its delivery time, and any worker's periodic restore scan puts
back on its queue every message older than the visibility timeout. That timeout is then both
the time a dead worker's task waits for redelivery and the longest a live worker may hold one
(a running evaluation, a retry waiting for its ETA) before it runs twice.

This consumer bootstep separates the two: every quarter of the timeout the worker's main
process rewrites the delivery time of every message it still holds. A live worker's messages
never look old; a dead worker's stop being renewed and are restored one timeout later. So the
timeout can be short (a minute) and tasks can be long. When the worker's main process dies,
its renewals die with it; when only a pool process dies, Celery requeues its task at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps

log = logging.getLogger("regpilot.queue.lease")


def held_delivery_tags(channel: Any) -> list[str]:
    """Return the delivery tags this channel holds unacknowledged (received, not yet acked)."""
    qos = getattr(channel, "qos", None)
    delivered = getattr(qos, "_delivered", None)
    if not delivered:
        return []
    done: set[Any] = getattr(qos, "_dirty", set())
    for _ in range(3):  # a threads/solo pool's timer runs beside the consumer: retry a race
        try:
            return [str(tag) for tag in list(delivered) if tag not in done]
        except RuntimeError:
            continue
    return []


def renew_leases(channel: Any) -> int:
    """Mark every message this channel holds as delivered now; return how many were renewed."""
    tags = held_delivery_tags(channel)
    if not tags:
        return 0
    now = time.time()
    with channel.conn_or_acquire() as client:
        # XX: only messages still in the index (one acked or restored meanwhile stays gone).
        renewed = client.zadd(channel.unacked_index_key, dict.fromkeys(tags, now), xx=True, ch=True)
    return int(renewed or 0)


class RenewVisibilityLeases(bootsteps.StartStopStep):  # type: ignore[misc]
    """Renew the Redis visibility lease of every held message, every quarter of the timeout."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.entry: Any = None

    def start(self, parent: Any) -> None:
        """Schedule the renewal on the consumer's timer (a Redis broker only)."""
        options = parent.app.conf.broker_transport_options or {}
        timeout = options.get("visibility_timeout")
        if not timeout or not str(parent.app.conf.broker_url).startswith(
            ("redis://", "rediss://", "unix://")
        ):
            return
        interval = max(1.0, float(timeout) / 4)
        self.entry = parent.timer.call_repeatedly(interval, self._renew, (parent,), priority=10)

    def _renew(self, parent: Any) -> None:
        consumer = parent.task_consumer
        if consumer is None:
            return
        try:
            renew_leases(consumer.channel)
        except Exception as exc:  # a broker hiccup: the next tick renews; never stop the worker
            log.warning("lease.renewal_failed", extra={"error": str(exc)[:300]})

    def stop(self, parent: Any) -> None:
        """Stop renewing (the consumer restarts or the worker shuts down)."""
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None

    shutdown = stop
