"""Claim a delivery id, then queue its task: the one way work enters the queue."""

from __future__ import annotations

import contextlib
from typing import Any

import redis
from celery import Celery

from regpilot.queue.broker_message import direct_queue_key, task_message
from regpilot.queue.names import TaskSpec
from regpilot.stores.redis_store import RedisStore


def dispatch(
    store: RedisStore,
    celery: Celery,
    queue: str,
    *,
    source: str,
    delivery_id: str,
    task: TaskSpec,
    args: list[Any],
    summary: dict[str, Any],
) -> str | None:
    """Queue `task` once per (source, delivery id); return the task id, None if a duplicate.

    When the broker refuses the message the claim is released before the error propagates, so
    the sender's retry (or the next reconciliation sweep) is accepted rather than lost.
    """
    task_id = f"{source}-{delivery_id}"
    task_name = task.name
    args = task.arguments(*args)
    kwargs = {"source": source, "delivery_id": delivery_id}
    queue_key = direct_queue_key(celery, store.client, task_name, queue)
    if queue_key is not None:
        # Broker and store are one Redis: claim, history and message in one script, so a
        # connection failure leaves all of it or none of it. Only an error inside the script
        # can leave a claim without its message: release that one.
        message = task_message(celery, task_name, task_id, args, kwargs, queue)
        try:
            claimed = store.claim_delivery(
                source, delivery_id, summary, enqueue=(queue_key, message)
            )
        except redis.ResponseError:
            with contextlib.suppress(Exception):
                store.release_delivery(source, delivery_id)
            raise
        return task_id if claimed else None
    if not store.claim_delivery(source, delivery_id, summary):
        return None
    try:
        celery.send_task(
            task_name,
            args=args,
            kwargs=kwargs,
            task_id=task_id,
            queue=queue,
            retry=False,
        )
    except BaseException:
        with contextlib.suppress(Exception):  # Redis may be what failed; the claim then expires
            store.release_delivery(source, delivery_id)
        raise
    return task_id
