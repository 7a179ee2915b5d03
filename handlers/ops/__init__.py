"""The ops room: the JSON API and the page under /ops/, behind the ops token."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import Flask

from config.settings import Settings
from handlers.ops import api, model_view, page

SESSION_LIFETIME = timedelta(hours=8)


def session_key(ops_token: str) -> bytes:
    """Derive the session signing key from the ops token.

    Every receiver process and replica derives the same key, so a login holds across them, and
    changing the token signs everyone out.
    """
    return hmac.new(ops_token.encode(), b"regpilot ops page session v1", hashlib.sha256).digest()


def install(app: Flask, settings: Settings) -> None:
    """Register the ops API and page, with the session cookie the page's login sets."""
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
    app.register_blueprint(api.blueprint)
    app.register_blueprint(page.blueprint)
    app.register_blueprint(model_view.blueprint)
