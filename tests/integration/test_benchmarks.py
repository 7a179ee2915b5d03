"""The receiver's direct enqueue, and `make bench`'s harness run with tiny counts.

No timing is asserted here: the harness is checked for running end to end and reporting what it
counted (events lost or doubled, MLflow calls), not for how fast anything was.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from celery import signals

from benchmarks.run import main as bench_main
from config.settings import Settings
from regpilot.queue.broker_message import direct_queue_key, task_message
from regpilot.queue.celery_config import create_celery
from regpilot.stores.redis_store import RedisStore
from tests.support import derive

pytestmark = pytest.mark.integration
TASK = "regpilot.model_version_created"
ARGS = ["model-a", "3"]
KWARGS = {"source": "mlflow", "delivery_id": "d-1"}


@pytest.fixture()
def bsettings(settings: Settings) -> Iterator[Settings]:
    """Settings with a queue of their own that no worker consumes."""
    derived = derive(settings, task_queue=settings.task_queue + "-bench")
    yield derived
    client = redis_lib.Redis.from_url(derived.redis_url)
    client.delete(f"{derived.key_prefix}celery:{derived.task_queue}")


def _pop(settings: Settings) -> dict:
    client = redis_lib.Redis.from_url(settings.redis_url)
    raw = client.rpop(f"{settings.key_prefix}celery:{settings.task_queue}")
    assert raw is not None, "nothing on the queue"
    return json.loads(raw)


def test_direct_enqueue_writes_exactly_what_send_task_writes(bsettings):
    celery = create_celery(bsettings)
    store = RedisStore.from_settings(bsettings)
    celery.send_task(TASK, args=ARGS, kwargs=KWARGS, task_id="t-1", queue=bsettings.task_queue)
    by_kombu = _pop(bsettings)

    key = direct_queue_key(celery, store.client, TASK, bsettings.task_queue)
    assert key == f"{bsettings.key_prefix}celery:{bsettings.task_queue}"
    message = task_message(celery, TASK, "t-1", ARGS, KWARGS, bsettings.task_queue)
    store.client.lpush(key, message)
    direct = _pop(bsettings)

    # Only the per-message random tag differs; the body decodes to Celery's protocol 2.
    assert by_kombu["properties"].pop("delivery_tag") != direct["properties"].pop("delivery_tag")
    assert direct == by_kombu
    args, kwargs, embed = json.loads(base64.b64decode(direct["body"]))
    assert (args, kwargs) == (ARGS, KWARGS) and embed["chain"] is None


def test_direct_enqueue_is_off_whenever_send_task_would_write_something_else(bsettings):
    store = RedisStore.from_settings(bsettings)
    queue = bsettings.task_queue
    assert direct_queue_key(create_celery(bsettings), store.client, TASK, queue) is not None

    elsewhere = derive(bsettings, broker_url="redis://127.0.0.1:6379/15")
    assert direct_queue_key(create_celery(elsewhere), store.client, TASK, queue) is None

    routed = create_celery(bsettings)
    routed.conf.task_routes = {TASK: {"queue": "other"}}
    assert direct_queue_key(routed, store.client, TASK, queue) is None

    registered = create_celery(bsettings)

    @registered.task(name=TASK, shared=False)  # shared=True would reach every app, ours too
    def handler(*args: object, **kwargs: object) -> None:
        return None

    registered.finalize()
    assert direct_queue_key(registered, store.client, TASK, queue) is None

    def stamp(**_: object) -> None:
        return None

    signals.before_task_publish.connect(stamp, weak=False)
    try:
        assert direct_queue_key(create_celery(bsettings), store.client, TASK, queue) is None
    finally:
        signals.before_task_publish.disconnect(stamp)


@pytest.mark.slow(80)
def test_benchmark_harness_runs_end_to_end_with_tiny_counts(tmp_path: Path, redis_url, capsys):
    sections = ["e2e", "burst", "retention"]
    if shutil.which("wrk"):  # Debian's wrk: `make bench` installs it, CI images may not have it
        sections.insert(0, "receiver")
    report = tmp_path / "BENCHMARKS.md"
    argv = ["--profile", "smoke", "--sections", ",".join(sections), "--output", str(report)]
    status = bench_main([*argv, "--redis-url", redis_url])
    assert status in (0, 1), capsys.readouterr().err[-3000:]  # 1: a target missed (no timing)
    text = report.read_text()
    for title in ("## 2. End-to-end delay", "## 3. Burst", "## 4. Retention at scale"):
        assert title in text
    assert "| burst: events lost / doubled | 0 / 0 | 0 / 0 | met |" in text
    assert "`POST /api/2.0/mlflow/model-versions/create`" in text  # calls were counted
    if "receiver" in sections:
        assert "queue check" in text and "all queued" in text
