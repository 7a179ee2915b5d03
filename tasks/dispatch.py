"""Claim a delivery id, then queue its task: the one way work enters the queue."""

from __future__ import annotations

import contextlib
from typing import Any

from celery import Celery

from stores.redis_store import RedisStore


def dispatch(
    store: RedisStore,
    celery: Celery,
    queue: str,
    *,
    source: str,
    delivery_id: str,
    task_name: str,
    args: list[Any],
    summary: dict[str, Any],
) -> str | None:
    """Queue `task_name` once per (source, delivery id); return the task id, None if a duplicate.

    When the broker refuses the message the claim is released before the error propagates, so
    the sender's retry (or the next reconciliation sweep) is accepted rather than lost.
    """
    if not store.claim_delivery(source, delivery_id, summary):
        return None
    task_id = f"{source}-{delivery_id}"
    try:
        celery.send_task(
            task_name,
            args=args,
            kwargs={"source": source, "delivery_id": delivery_id},
            task_id=task_id,
            queue=queue,
            retry=False,
        )
    except BaseException:
        with contextlib.suppress(Exception):  # Redis may be what failed; the claim then expires
            store.release_delivery(source, delivery_id)
        raise
    return task_id
