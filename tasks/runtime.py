"""Per-process collaborators of the tasks, built once on first use."""

from __future__ import annotations

import multiprocessing
from functools import lru_cache

from config.policy import Policy, load_policy
from config.settings import Settings
from regpilot.core.registry_port import Registry
from regpilot.evaluation.runner import StartMethod
from regpilot.queue.evaluation import EvaluationQueuer, engine_evaluator
from regpilot.queue.notify import Notifier
from regpilot.registry import build_registry
from regpilot.stores.redis_store import RedisStore
from regpilot.workflows.context import Context, Trigger


@lru_cache(maxsize=1)
def _settings() -> Settings:
    from tasks.celery_app import app

    settings = app.conf.get("regpilot_settings")
    return settings if isinstance(settings, Settings) else Settings()


@lru_cache(maxsize=1)
def _policy() -> Policy:
    return load_policy(_settings().policy_file)


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return build_registry(_settings())


def settings() -> Settings:
    """Return this process's settings."""
    return _settings()


def policy() -> Policy:
    """Return this process's policy (read once per worker process)."""
    return _policy()


def registry() -> Registry:
    """Return this process's registry adapter."""
    return _registry()


@lru_cache(maxsize=1)
def notifier() -> Notifier:
    """Return this process's notifier: it queues notifications on the worker's own broker."""
    from tasks.celery_app import app

    return Notifier(app, _settings().task_queue, _policy())


@lru_cache(maxsize=1)
def store() -> RedisStore:
    """Return this process's Redis store."""
    return RedisStore.from_settings(_settings())


def _start_method() -> StartMethod:
    # The warm forkserver (about 1.3x in-process `mlflow.models.evaluate`, against 4.8x for a
    # cold subprocess: docs/BENCHMARKS.md) where this process may have children: a worker with
    # `--pool threads` or `solo`. Celery's prefork pool processes are daemonic, and Python
    # refuses a daemonic process children, so there each evaluation is a subprocess.
    return "subprocess" if multiprocessing.current_process().daemon else "forkserver"


def evaluation_queue() -> str:
    """Return the queue evaluations go to (REGPILOT_EVALUATION_QUEUE, else `<queue>-evaluate`)."""
    return _settings().effective_evaluation_queue


def context(source: str, delivery_id: str | None, *, evaluate: bool = False) -> Context:
    """Return a workflow context for one task run.

    A registry task queues evaluations (`regpilot.evaluate_model` on the evaluation queue);
    the evaluation task (`evaluate=True`) runs them in this worker, in a killable child.
    """
    from tasks.celery_app import app

    return Context(
        registry=_registry(),
        policy=_policy(),
        settings=_settings(),
        store=store(),
        trigger=Trigger(source, delivery_id),
        notify=notifier(),
        evaluate=engine_evaluator(_settings(), _start_method()) if evaluate else None,
        queue_evaluation=EvaluationQueuer(app, evaluation_queue(), source, delivery_id),
    )
