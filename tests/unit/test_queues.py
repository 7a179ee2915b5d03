"""Two queues: registry work and evaluations, routed by task name, consumed by worker roles."""

from __future__ import annotations

import pytest
import redis

from config.settings import Settings
from regpilot.cli.service import worker_queues
from regpilot.queue import names
from regpilot.queue.broker_message import direct_queue_key
from regpilot.queue.celery_config import broker_transport_options, create_celery
from regpilot.queue.lease import RenewVisibilityLeases

REDIS = "redis://127.0.0.1:6379/0"


def _settings(**overrides: object) -> Settings:
    return Settings(redis_url=REDIS, task_queue="rq", **overrides)


def test_the_evaluation_queue_defaults_to_the_task_queue_with_a_suffix():
    assert _settings().effective_evaluation_queue == "rq-evaluate"
    assert _settings(evaluation_queue="models").effective_evaluation_queue == "models"


def test_evaluations_are_routed_by_name_and_registry_work_stays_on_the_task_queue():
    settings = _settings()
    router = create_celery(settings).amqp.router
    assert router.route({}, names.EVALUATE_MODEL.name)["queue"].name == "rq-evaluate"
    for spec in set(names.ALL_TASKS) - set(names.EVALUATION_TASKS):
        assert router.route({}, spec.name)["queue"].name == "rq", spec.name


def test_the_receivers_direct_write_stays_on_for_registry_tasks_only():
    settings = _settings()
    celery = create_celery(settings)
    client = redis.Redis.from_url(REDIS)  # direct_queue_key compares addresses, connects not
    key = direct_queue_key(celery, client, names.RUN_COMPLETED.name, "rq")
    assert key == f"{settings.key_prefix}celery:rq"
    assert direct_queue_key(celery, client, names.EVALUATE_MODEL.name, "rq-evaluate") is None


def test_an_evaluation_task_gets_the_hard_time_limit_where_it_is_registered():
    app = create_celery(_settings(evaluation_time_limit=500))

    @app.task(name=names.EVALUATE_MODEL.name, shared=False)  # not on the worker's app
    def evaluate(name: str, version: str) -> None:
        return None

    app.finalize()
    task = app.tasks[names.EVALUATE_MODEL.name]
    assert task.time_limit == 500 and task.soft_time_limit == 440


@pytest.mark.parametrize(
    ("role", "queues"),
    [("all", ["rq", "rq-evaluate"]), ("registry", ["rq"]), ("evaluate", ["rq-evaluate"])],
)
def test_each_worker_role_consumes_its_queues(role, queues):
    assert worker_queues(_settings(), role) == queues


def test_redis_renews_leases_and_rabbitmq_confirms_publishes_instead():
    on_redis = create_celery(_settings())
    assert RenewVisibilityLeases in on_redis.steps["consumer"]
    options = broker_transport_options(_settings())
    assert options["visibility_timeout"] == 60  # the shipped default: a dead worker's bound
    assert options["unacked_restore_interval"] <= 10 and options["unacked_restore_throttle"] == 1
    assert options["unacked_mutex_expire"] <= 60

    rabbit = _settings(broker_url="amqp://guest:guest@127.0.0.1:5672//")
    assert RenewVisibilityLeases not in create_celery(rabbit).steps["consumer"]
    assert broker_transport_options(rabbit) == {"confirm_publish": True}


def test_only_run_deliveries_still_queued_past_the_threshold_count_as_lost():
    from regpilot.workflows.reconcile import STALE_DELIVERY_SECONDS, stale_run_deliveries

    now = 1_000_000.0
    old = now - STALE_DELIVERY_SECONDS - 1
    events = [
        {"run_id": "lost", "model": "m", "outcome": "queued", "received_at": old},
        {"run_id": "young", "model": "m", "outcome": "queued", "received_at": now - 5},
        {"run_id": "done", "model": "m", "outcome": "processed", "received_at": old},
        {"run_id": "dead", "model": "m", "outcome": "dead", "received_at": old},
        {"run_id": "nameless", "outcome": "queued", "received_at": old},
        {"event": "model_version.created", "model": "m", "outcome": "queued", "received_at": old},
    ]
    assert stale_run_deliveries(events, now) == {"lost": "m"}
