"""The receiver's collaborators, built once by the app factory and shared by both rooms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from celery import Celery
from flask import current_app

from config.policy import Policy
from config.settings import Settings
from regpilot.registry.mlflow_http import HealthProbe
from regpilot.stores.redis_store import RedisStore

EXTENSION = "regpilot"


@dataclass
class Services:
    """What the webhook and ops views work with: one per app, never rebuilt per request."""

    settings: Settings
    policy: Policy
    store: RedisStore
    celery: Celery
    clock: Callable[[], float]
    mlflow: HealthProbe


def services() -> Services:
    """Return the current app's Services."""
    value = current_app.extensions[EXTENSION]
    assert isinstance(value, Services)
    return value
