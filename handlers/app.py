"""The Flask app factory: `gunicorn 'handlers:create_app()'`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config.policy import load_policy
from config.settings import Settings
from handlers import health, ops, telemetry, webhooks
from handlers.errors import install_error_handlers
from handlers.services import EXTENSION, Services
from regpilot.observability.logging import setup_logging
from regpilot.queue.celery_config import create_celery
from regpilot.registry.mlflow_http import HealthProbe
from regpilot.stores.redis_store import RedisStore

log = logging.getLogger("regpilot.receiver")


class ConfigurationError(Exception):
    """Settings that make the receiver unsafe or unable to run; it refuses to start."""


def check_secrets(settings: Settings) -> None:
    """Refuse to run with an unusable secret, or none at all unless insecure mode is asked for.

    Every entry of every configured secret is decoded here, at start-up: a bad one found at the
    first delivery would answer every sender 500 and make them retry forever.
    """
    problems = settings.secret_problems()
    if problems:
        raise ConfigurationError("refusing to start: " + "; ".join(problems))
    if settings.mlflow_webhook_secrets or settings.run_webhook_secrets:
        return
    if settings.databricks_enabled:
        return  # check_databricks refuses Databricks endpoints that would authenticate no one
    if settings.insecure_no_signature:
        log.warning(
            "receiver.insecure_mode: accepting UNSIGNED webhooks; never do this outside local play"
        )
        return
    raise ConfigurationError(
        "no webhook secret configured: set REGPILOT_MLFLOW_WEBHOOK_SECRET and/or "
        "REGPILOT_RUN_WEBHOOK_SECRET (or REGPILOT_INSECURE_NO_SIGNATURE=true for local play)"
    )


def check_databricks(settings: Settings) -> None:
    """Refuse the Databricks endpoints without a workspace to call back or a caller check."""
    from handlers.webhooks.databricks import configuration_problems

    problems = configuration_problems(settings)
    if problems:
        raise ConfigurationError("; ".join(problems))


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    configure_logging: bool = True,
) -> Flask:
    """Build the receiver. Raises ConfigurationError or PolicyError when it must not start."""
    settings = settings or Settings()
    if configure_logging:
        setup_logging(settings.log_format, settings.log_level)
    check_secrets(settings)
    if settings.databricks_enabled:
        check_databricks(settings)
    # An invalid policy stops the start, naming file and line.
    policy = load_policy(settings.policy_file)
    app = Flask("regpilot")
    if settings.trust_proxy:
        # One proxy in front: take the client address, scheme and host it saw, so the ops
        # throttle counts clients (not the proxy), cookies get Secure over HTTPS and the
        # same-origin check compares with the origin the browser used.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = Services(
        settings=settings,
        policy=policy,
        store=RedisStore.from_settings(settings),
        celery=create_celery(settings),
        clock=clock,
        mlflow=HealthProbe(settings.mlflow_tracking_uri),
    )
    webhooks.install(app, settings)
    app.register_blueprint(health.blueprint)
    telemetry.install(app)
    ops.install(app, settings)
    install_error_handlers(app)
    return app
