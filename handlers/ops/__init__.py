"""The ops room: the JSON API and the page under /ops/, behind the ops token.

Sessions are server-side (Redis, see handlers/ops/auth.py): the cookie carries a random id and
no Flask-signed data, so no signing key is derived from the ops token any more.
"""

from __future__ import annotations

from flask import Flask, Response, request

from config.settings import Settings
from handlers.ops import api, auth, model_view, page

# Sent with every /ops/ answer, the page's and the API's. The page has no inline script or
# style (its stylesheet is a static file), so 'self' is all it needs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


def install(app: Flask, settings: Settings) -> None:
    """Register the ops API and page, their session store and their security headers."""
    auth.install(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(page.blueprint)
    app.register_blueprint(model_view.blueprint)

    @app.after_request
    def _secure_ops_answers(response: Response) -> Response:
        if request.path == auth.COOKIE_PATH or request.path.startswith(auth.COOKIE_PATH + "/"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response
