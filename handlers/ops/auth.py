"""Who may use /ops/: a bearer token (REGPILOT_OPS_TOKEN) or a session the ops login set."""

from __future__ import annotations

import hmac

from flask import request, session

from handlers.errors import Reject
from handlers.services import services

SESSION_FLAG = "regpilot_ops"


def ops_token() -> str | None:
    """Return the configured ops token, or None when the ops API is off."""
    token = services().settings.ops_token
    value = token.get_secret_value() if token is not None else ""
    return value or None


def token_matches(offered: str) -> bool:
    """Compare an offered token with the configured one in constant time."""
    token = ops_token()
    return token is not None and hmac.compare_digest(offered.encode(), token.encode())


def require_ops() -> None:
    """Reject the request unless the ops API is on and the caller is authorised."""
    if ops_token() is None:
        raise Reject(404, "ops API disabled: set REGPILOT_OPS_TOKEN to turn it on")
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and token_matches(header[len("Bearer ") :].strip()):
        return
    if session.get(SESSION_FLAG) is True:
        return
    raise Reject(401, "missing or wrong ops bearer token")
