"""The one claim script and dispatch's promise, against the real Redis.

A delivery is never claimed without its task queued: on the fast path the claim and the task
message are one Lua script; on the send_task path the claim is released when the broker refuses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib
from celery import Celery

from regpilot.queue.dispatch import dispatch
from regpilot.queue.names import RUN_COMPLETED
from regpilot.stores.redis_store import RedisStore

pytestmark = pytest.mark.integration


@pytest.fixture()
def store(redis_url: str, key_prefix: str) -> Iterator[RedisStore]:
    client = redis_lib.Redis.from_url(redis_url)
    yield RedisStore(client, f"{key_prefix}claim-{uuid.uuid4().hex[:8]}:")
    client.close()


def _queued(store: RedisStore, queue_key: str) -> list[bytes]:
    return list(store.client.lrange(queue_key, 0, -1))


def test_a_claim_records_the_delivery_once(store: RedisStore) -> None:
    delivery = uuid.uuid4().hex
    assert store.claim_delivery("runs", delivery, {"run_id": "r1"})
    assert not store.claim_delivery("runs", delivery, {"run_id": "r1"})
    [event] = store.events()
    assert (event["delivery_id"], event["outcome"], event["run_id"]) == (delivery, "queued", "r1")
    assert store.client.ttl(store.key("delivery", "runs", delivery)) > 0


def test_a_claim_with_a_message_pushes_it_only_when_the_claim_succeeds(store: RedisStore) -> None:
    delivery = uuid.uuid4().hex
    queue_key = store.key("queue")
    assert store.claim_delivery("runs", delivery, {}, enqueue=(queue_key, "message-1"))
    assert not store.claim_delivery("runs", delivery, {}, enqueue=(queue_key, "message-2"))
    assert _queued(store, queue_key) == [b"message-1"]
    assert len(store.events()) == 1


def test_a_released_claim_can_be_claimed_again(store: RedisStore) -> None:
    delivery = uuid.uuid4().hex
    assert store.claim_delivery("runs", delivery, {})
    store.release_delivery("runs", delivery)
    assert store.events() == []
    assert store.claim_delivery("runs", delivery, {})


def _celery(broker_url: str, prefix: str) -> Celery:
    app = Celery("claim-test", broker=broker_url, set_as_current=False)
    app.conf.broker_transport_options = {"global_keyprefix": prefix}
    app.conf.broker_connection_retry = False
    app.conf.broker_connection_timeout = 2
    return app


def test_dispatch_on_the_store_redis_claims_and_queues_in_one_step(
    store: RedisStore, redis_url: str
) -> None:
    celery = _celery(redis_url, store.key("broker:"))
    task = RUN_COMPLETED
    queue = "claim-test"
    delivery = uuid.uuid4().hex
    args = [None] * len(task.args)
    first = dispatch(
        store,
        celery,
        queue,
        source="runs",
        delivery_id=delivery,
        task=task,
        args=args,
        summary={},
    )
    again = dispatch(
        store,
        celery,
        queue,
        source="runs",
        delivery_id=delivery,
        task=task,
        args=args,
        summary={},
    )
    assert first == f"runs-{delivery}"
    assert again is None
    [raw] = _queued(store, store.key("broker:") + queue)  # only the first one was queued
    message = json.loads(raw)
    assert (message["headers"]["id"], message["headers"]["task"]) == (first, task.name)


def test_dispatch_releases_the_claim_when_the_broker_refuses(store: RedisStore) -> None:
    refused = _celery("redis://127.0.0.1:1/0", "unused:")  # nothing listens on port 1
    task = RUN_COMPLETED
    delivery = uuid.uuid4().hex
    with pytest.raises(Exception):  # noqa: B017 - kombu's error type depends on the transport
        dispatch(
            store,
            refused,
            "claim-test",
            source="runs",
            delivery_id=delivery,
            task=task,
            args=[None] * len(task.args),
            summary={},
        )
    assert store.events() == []
    assert store.claim_delivery("runs", delivery, {})  # the sender's retry is accepted
