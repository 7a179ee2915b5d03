"""Every error the receiver returns is JSON with a reason; nothing else leaks."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException


class Reject(Exception):
    """Stop handling a request and answer `status` with a JSON reason."""

    def __init__(self, status: int, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra


def json_response(code: int, **body: Any) -> ResponseReturnValue:
    """Return a JSON response."""
    return jsonify(body), code


def install_error_handlers(app: Flask) -> None:
    """Answer every error, including unexpected ones, with JSON and no traceback."""

    @app.errorhandler(Reject)
    def _reject(exc: Reject) -> ResponseReturnValue:
        return json_response(exc.status, status="rejected", reason=exc.reason, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        reason = {413: "request body too large"}.get(code, exc.name.lower())
        return json_response(code, status="rejected", reason=reason)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        app.logger.exception("webhook.internal_error")
        return json_response(500, status="error", reason="internal error")
