"""The Celery configuration shared by producers and workers, built from one Settings.

Producers (the receiver, the CLI) build an app with no task modules; the worker's app
(`tasks/celery_app.py`) is the same configuration plus the task modules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import Celery

from config.settings import Settings
from regpilot.queue.names import EVALUATION_TASKS, RECONCILE

# RabbitMQ closes a channel whose delivery stays unacknowledged longer than its
# `consumer_timeout` (default 30 minutes), so no task may be held that long: neither a retry
# waiting for its ETA (REGPILOT_TASK_RETRY_BACKOFF_MAX) nor an evaluation (its time limit).
RABBITMQ_CONSUMER_TIMEOUT_SECONDS = 1800

log = logging.getLogger("regpilot.queue")


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """Return the transport options of this broker (Redis and RabbitMQ differ)."""
    if not settings.broker_is_redis:
        # Publisher confirms: send_task returns only once RabbitMQ has the message, so a
        # delivery is never claimed with its task unqueued.
        return {"confirm_publish": True}
    timeout = settings.broker_visibility_timeout
    return {
        "global_keyprefix": settings.key_prefix + "celery:",
        # A dead worker's task is restored this long after its last lease renewal; a live
        # worker renews every held message every timeout/4 (regpilot/queue/lease.py).
        "visibility_timeout": timeout,
        # Look for tasks of dead workers every few seconds, not kombu's default ~100 s
        # (a 10 s tick throttled to every 10th), so a redelivery follows the timeout closely.
        "unacked_restore_interval": max(1, min(10, timeout // 4)),
        "unacked_restore_throttle": 1,
        # A worker killed inside its restore scan leaves this mutex behind: it must not stop
        # every other worker's scans for kombu's default 5 minutes.
        "unacked_mutex_expire": max(10, min(60, timeout)),
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }


def create_celery(settings: Settings, include: Sequence[str] = ()) -> Celery:
    """Return a Celery app for these settings: late acks, bounded retries, two queues.

    Registry work goes to `task_queue`; evaluations are routed by name to the evaluation
    queue, with a hard time limit. The producers' routes name only a queue, so the receiver's
    direct write to the registry queue (broker_message.py) stays on.
    """
    app = Celery("regpilot", include=list(include))
    app.conf.update(
        broker_url=settings.effective_broker_url,
        result_backend=None,
        task_ignore_result=True,
        task_default_queue=settings.task_queue,
        task_routes={
            spec.name: {"queue": settings.effective_evaluation_queue} for spec in EVALUATION_TASKS
        },
        # Applied where the task is registered (the worker): past it, the pool process is
        # killed and the task fails; a soft limit a minute earlier lets it record why.
        task_annotations={
            spec.name: {
                "time_limit": settings.evaluation_time_limit,
                "soft_time_limit": max(10, settings.evaluation_time_limit - 60),
            }
            for spec in EVALUATION_TASKS
        },
        task_serializer="json",
        accept_content=["json"],
        # Tasks are idempotent, so a task whose worker died is redelivered rather than lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options=broker_transport_options(settings),
        # RabbitMQ: a worker whose node vanishes without closing its connection (power loss, a
        # network partition) is declared dead after missed heartbeats, and its tasks requeued;
        # 30 s (Celery's default is 120 s) keeps that well inside the 3-minute bound.
        broker_heartbeat=30 if not settings.broker_is_redis else None,
        worker_hijack_root_logger=False,
        beat_schedule={
            "reconcile": {
                "task": RECONCILE.name,
                "schedule": float(settings.reconcile_interval_seconds),
                "options": {
                    "queue": settings.task_queue,
                    "expires": float(settings.reconcile_interval_seconds),
                },
            }
        },
    )
    app.conf.regpilot_settings = settings
    held = max(settings.evaluation_time_limit, settings.task_retry_backoff_max)
    if not settings.broker_is_redis and held >= RABBITMQ_CONSUMER_TIMEOUT_SECONDS:
        log.warning(
            "broker.consumer_timeout",
            extra={
                "error": f"a task may be held {held} s, past RabbitMQ's default consumer_timeout "
                f"({RABBITMQ_CONSUMER_TIMEOUT_SECONDS} s): raise consumer_timeout on the broker"
            },
        )
    if settings.broker_is_redis:
        from regpilot.queue.lease import RenewVisibilityLeases

        app.steps["consumer"].add(RenewVisibilityLeases)
    return app
