"""`regpilot worker --role`: each role consumes its queues, evaluate workers get their limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib

from config.settings import Settings
from regpilot.queue.celery_config import create_celery
from tests.worker_processes import DefaultWorker

pytestmark = pytest.mark.integration


@pytest.fixture()
def role_settings(redis_url, tmp_path) -> Iterator[Settings]:
    prefix = f"regpilot-test-roles-{uuid.uuid4().hex[:8]}:"
    yield Settings(
        redis_url=redis_url, key_prefix=prefix, task_queue=prefix.rstrip(":"), state_dir=tmp_path
    )
    client = redis_lib.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def test_each_role_consumes_its_queues_and_evaluate_workers_recycle_their_processes(
    role_settings, tmp_path
):
    settings = role_settings
    nodes = {role: f"{role}-{uuid.uuid4().hex[:6]}@roles" for role in ("registry", "evaluate")}
    workers = []
    try:
        for role, node in nodes.items():
            log = tmp_path / f"{role}.log"
            workers.append(DefaultWorker(settings, log, "--role", role, "--hostname", node))
        inspect = create_celery(settings).control.inspect(
            timeout=10, destination=list(nodes.values())
        )
        queues = {
            node: sorted(q["name"] for q in consumed)
            for node, consumed in (inspect.active_queues() or {}).items()
        }
        conf = inspect.conf(with_defaults=True) or {}
    finally:
        for worker in workers:
            worker.stop()
    assert queues == {
        nodes["registry"]: [settings.task_queue],
        nodes["evaluate"]: [settings.effective_evaluation_queue],
    }
    evaluate = conf[nodes["evaluate"]]
    assert evaluate["worker_max_memory_per_child"] == settings.evaluation_max_memory_per_child
    assert evaluate["worker_max_tasks_per_child"] == settings.evaluation_max_tasks_per_child
    registry = conf[nodes["registry"]]
    assert registry["worker_max_tasks_per_child"] is None
    assert registry["worker_max_memory_per_child"] is None
