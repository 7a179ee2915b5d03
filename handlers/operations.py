"""What running the receiver as a service adds: /metrics, log context, readiness, the ops page."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app

from config.policy import Policy
from config.settings import Settings
from handlers import ops_page, telemetry
from registry.mlflow_http import HealthProbe

SESSION_LIFETIME = timedelta(hours=8)


@dataclass
class Operations:
    """The receiver's view of the rest of the system, for readiness and the ops page."""

    settings: Settings
    policy: Policy
    mlflow: HealthProbe


def operations() -> Operations:
    """Return the current app's Operations."""
    value = current_app.extensions["regpilot_operations"]
    assert isinstance(value, Operations)
    return value


def session_key(ops_token: str) -> bytes:
    """Derive the session signing key from the ops token.

    Every receiver process and replica derives the same key, so a login holds across them, and
    changing the token signs everyone out.
    """
    return hmac.new(ops_token.encode(), b"regpilot ops page session v1", hashlib.sha256).digest()


def install_operations(app: Flask, settings: Settings, policy: Policy) -> None:
    """Add /metrics, the request log context, the readiness probes' state and the ops page."""
    app.extensions["regpilot_operations"] = Operations(
        settings, policy, HealthProbe(settings.mlflow_tracking_uri)
    )
    token = settings.ops_token.get_secret_value() if settings.ops_token else ""
    if token:
        app.secret_key = session_key(token)
    app.config.update(
        SESSION_COOKIE_NAME="regpilot_ops",
        SESSION_COOKIE_PATH="/ops",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.ops_cookie_secure,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    telemetry.install(app)
    app.register_blueprint(ops_page.blueprint)
