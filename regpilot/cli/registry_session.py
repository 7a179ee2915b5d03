"""The workflow context a registry command runs with: one person, one model, maybe Redis.

Read-only commands (details, compare, validate, retention --dry-run, policy) never touch Redis.
Commands that change the registry need it, for the per-model lock (so they never interleave
with the worker) and for the decision history; without it they refuse with a clear message
rather than change the registry unrecorded. `history` reads Redis and nothing else.
"""

from __future__ import annotations

import getpass
from typing import Any
from urllib.parse import urlparse

import click

from config.policy import load_policy
from config.settings import Settings
from regpilot.cli.common import registry_from, setting_as_given, settings
from regpilot.queue.evaluation import engine_evaluator
from regpilot.queue.notify import Notifier
from regpilot.stores.redis_store import RedisStore
from regpilot.workflows.context import Context, Trigger


class CliContext(Context):
    """A context whose every decision is recorded.

    The worker names its decisions (`identity`) so redone work is recorded once; a command a
    person runs is never redone work, so the same decision made twice is two records.
    """

    def record(self, model: str, kind: str, *, identity: str | None = None, **details: Any) -> None:
        """Record a decision in the history and the log, every time."""
        super().record(model, kind, **details)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        return "unknown"


def _redis_where(url: str) -> str:
    # Never print a password that may be in the URL.
    parsed = urlparse(url)
    return f"{parsed.hostname}:{parsed.port or 6379}{parsed.path or ''}"


def require_store(config: Settings, command: str) -> RedisStore:
    """Return the Redis store, or stop with a message saying why this command needs it."""
    store = RedisStore.from_settings(config)
    if not store.ping():
        raise click.ClickException(
            f"{setting_as_given('REGPILOT_REDIS_URL')}: Redis at {_redis_where(config.redis_url)} "
            f"does not answer; `regpilot {command}` "
            "needs it (the model lock and the decision history). Read-only commands work "
            "without it: details, compare, validate, retention --dry-run, policy check/backtest."
        )
    return store


def open_model(raw_name: str, command: str, *, writes: bool) -> tuple[Context, str]:
    """Return a context and the model's full name; the name is checked before any call."""
    ctx = read_only_context()
    name = ctx.full_name(raw_name)
    if writes:
        ctx.store = require_store(ctx.settings, command)
        ctx.notify = _notifier(ctx)
    return ctx, name


def _notifier(ctx: Context) -> Notifier:
    # A person's promotion or rollback notifies like the worker's: queued for the worker.
    from regpilot.queue.celery_config import create_celery

    return Notifier(create_celery(ctx.settings), ctx.settings.task_queue, ctx.policy)


def read_only_context() -> Context:
    """Return a context without Redis: the registry and the policy, acting as this user."""
    config = settings()
    return CliContext(
        registry=registry_from(config),
        policy=load_policy(config.policy_file),
        settings=config,
        trigger=Trigger("cli", actor=_user()),
        # A model with an `evaluation` block is measured here, in a killable child with the
        # policy's timeout (the same engine the evaluation worker runs).
        evaluate=engine_evaluator(config),
    )
