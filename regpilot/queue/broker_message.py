"""Write a task message straight onto the Redis queue list, exactly as Celery and kombu would.

The receiver's hot path: `send_task` costs about 0.5 ms of CPU per event (routing, message
building, a new kombu client per publish) plus its own Redis round trip. When the broker is the
same Redis as the store, the claim, the history record and the task message go in one Lua script
instead (stores/redis_store.py `claim_delivery`): one round trip, no kombu.

The message is Celery's task protocol 2 (celery/app/amqp.py `as_task_v2`) wrapped in kombu's
Redis envelope (kombu/transport/virtual/base.py `basic_publish`), LPUSHed on the list kombu's
`_put` uses for priority 0: `<global_keyprefix><queue>`. Whenever anything would make
`send_task` write something else (a route for this task, priorities, compression, publish
signals, a task registered in this process with its own options), `direct_queue_key` answers
None and the caller uses `send_task`.
"""

from __future__ import annotations

import base64
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from celery import Celery, signals
from celery.utils.nodenames import anon_nodename
from kombu.utils.json import dumps

_BROKER_SCHEMES = ("redis://", "rediss://", "unix://")
_REPR_LIMIT = 1024  # Celery's argsrepr_maxsize / kwargsrepr_maxsize
_NO_WORKFLOW = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
# Per Celery app: the broker's key prefix when the app allows direct writes, else None.
_APP_PREFIX: weakref.WeakKeyDictionary[Celery, str | None] = weakref.WeakKeyDictionary()
# Per Celery app: (host, port, unix path, db) of its broker, None when that is not one Redis.
_BROKER_SERVER: weakref.WeakKeyDictionary[Celery, tuple[Any, ...] | None] = (
    weakref.WeakKeyDictionary()
)


def _app_prefix(celery: Celery) -> str | None:
    """Return the broker's global key prefix if this app's messages can be written directly."""
    if celery in _APP_PREFIX:
        return _APP_PREFIX[celery]
    conf = celery.conf
    options = conf.broker_transport_options or {}
    plain = (
        isinstance(conf.broker_url, str)
        and conf.broker_url.startswith(_BROKER_SCHEMES)
        and ";" not in conf.broker_url
        and conf.task_protocol == 2
        and conf.task_serializer == "json"
        and not conf.task_compression
        and _routes_by_exact_name(conf.task_routes)
        and conf.task_queues is None
        and conf.task_default_priority is None
        and conf.task_queue_max_priority is None
        and not conf.task_send_sent_event
        and "sep" not in options
        and "priority_steps" not in options
    )
    prefix = str(options.get("global_keyprefix", "")) if plain else None
    _APP_PREFIX[celery] = prefix
    return prefix


def _routes_by_exact_name(routes: Any) -> bool:
    """Tell whether task routes, if any, are a plain name -> options mapping (no patterns)."""
    if not routes:
        return True
    return isinstance(routes, Mapping) and not any(
        not isinstance(name, str) or any(c in name for c in "*?[") for name in routes
    )


def _server(pool: redis.ConnectionPool) -> tuple[Any, ...]:
    kwargs = pool.connection_kwargs
    return (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"), kwargs.get("db", 0))


def _broker_server(celery: Celery) -> tuple[Any, ...] | None:
    if celery not in _BROKER_SERVER:
        try:  # parses the URL only; no connection is made
            _BROKER_SERVER[celery] = _server(redis.ConnectionPool.from_url(celery.conf.broker_url))
        except ValueError:
            _BROKER_SERVER[celery] = None
    return _BROKER_SERVER[celery]


def direct_queue_key(celery: Celery, client: redis.Redis, task_name: str, queue: str) -> str | None:
    """Return the Redis list `send_task` would LPUSH this task onto through `client`'s server.

    None when a direct write would differ from what `send_task` writes, or when the broker is
    not the Redis server and database `client` talks to.
    """
    prefix = _app_prefix(celery)
    if prefix is None:
        return None
    if signals.before_task_publish.receivers or signals.after_task_publish.receivers:
        return None
    # A routed task may go elsewhere or carry the route's options: only send_task knows.
    if task_name in (celery.conf.task_routes or {}):
        return None
    # A task registered here would lend send_task its own options (ignore_result, limits...).
    registered = getattr(celery, "_tasks", None)
    if registered is None or task_name in registered:
        return None
    if _broker_server(celery) != _server(client.connection_pool):
        return None
    return prefix + queue


def _repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def task_message(
    celery: Celery,
    task_name: str,
    task_id: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    queue: str,
) -> str:
    """Return the JSON kombu's Redis transport stores for `send_task(..., queue=queue)`."""
    body = dumps([list(args), dict(kwargs), _NO_WORKFLOW])
    headers = {
        "lang": "py",
        "task": task_name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": _repr(list(args)),
        "kwargsrepr": _repr(dict(kwargs)),
        "origin": anon_nodename(),
        "ignore_result": None,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    return str(
        dumps(
            {
                "body": base64.b64encode(body.encode("utf-8")).decode("ascii"),
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": headers,
                "properties": {
                    "correlation_id": task_id,
                    "reply_to": celery.thread_oid,
                    "delivery_mode": 2,
                    "delivery_info": {"exchange": "", "routing_key": queue},
                    "priority": 0,
                    "body_encoding": "base64",
                    "delivery_tag": str(uuid.uuid4()),
                },
            }
        )
    )
