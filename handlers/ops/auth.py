"""Who may use /ops/, and how a state-changing call proves it is not forged.

Two ways in: the bearer token (REGPILOT_OPS_TOKEN) in an Authorization header, or a session the
login form started (a random id in the cookie, the record in Redis). A browser sends the cookie
on its own, even for a form another page on the same site submits, so a session alone never
changes state: it also needs the session's CSRF token and an Origin (else Referer) that is this
receiver's own. A bearer header is something no browser adds by itself, so it is enough.
Wrong tokens are counted per client in Redis; past the limit the client gets 429.
"""

from __future__ import annotations

import functools
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from flask import Flask, current_app, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from redis import RedisError

from handlers.errors import Reject
from handlers.services import EXTENSION as SERVICES
from handlers.services import Services, services
from regpilot.stores.ops_access import (
    OpsSession,
    OpsSessions,
    WrongTokenThrottle,
    token_fingerprint,
)

log = logging.getLogger("regpilot.ops")

EXTENSION = "regpilot_ops_access"
COOKIE = "regpilot_ops"
COOKIE_PATH = "/ops"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
MAX_FIELD_LENGTH = 4096
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
OFF = "ops API disabled: set REGPILOT_OPS_TOKEN to turn it on"
REDIS_DOWN = "Redis unavailable: ops sessions and wrong-token counts cannot be checked; retry later"


@dataclass(frozen=True)
class OpsAccess:
    """The Redis-backed parts of ops access, built once per app."""

    sessions: OpsSessions
    throttle: WrongTokenThrottle


class TokenCheck(Enum):
    """What checking an offered ops token found."""

    RIGHT = "right"
    WRONG = "wrong"
    THROTTLED = "throttled"


@dataclass(frozen=True)
class Caller:
    """An authorised caller: `session` is None when the bearer token authorised it."""

    session: OpsSession | None

    @property
    def csrf(self) -> str:
        """Return the token a page's forms carry: empty for a bearer caller (it needs none)."""
        return self.session.csrf if self.session else ""


class Throttled(Reject):
    """Too many wrong tokens from this client: 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, "too many wrong ops tokens from this client; retry later")
        self.retry_after = retry_after


def install(app: Flask) -> None:
    """Build the session store and the throttle; answer Throttled with a Retry-After header."""
    ctx = app.extensions[SERVICES]
    assert isinstance(ctx, Services)
    store, settings = ctx.store, ctx.settings
    app.extensions[EXTENSION] = OpsAccess(
        sessions=OpsSessions(store.client, store.prefix, settings.ops_session_seconds),
        throttle=WrongTokenThrottle(
            store.client,
            store.prefix,
            settings.ops_login_max_failures,
            settings.ops_login_window_seconds,
        ),
    )

    @app.errorhandler(Throttled)
    def _throttled(exc: Throttled) -> ResponseReturnValue:
        body = jsonify(status="rejected", reason=exc.reason)
        return body, 429, {"Retry-After": str(exc.retry_after)}


def access() -> OpsAccess:
    """Return the current app's session store and throttle."""
    value = current_app.extensions[EXTENSION]
    assert isinstance(value, OpsAccess)
    return value


def ops_token() -> str | None:
    """Return the configured ops token, or None when the ops API is off."""
    token = services().settings.ops_token
    value = token.get_secret_value() if token is not None else ""
    return value or None


def current_fingerprint() -> str:
    """Return the fingerprint of the configured ops token that sessions are bound to."""
    return token_fingerprint(ops_token() or "")


def require_enabled() -> None:
    """Answer 404 when no ops token is configured."""
    if ops_token() is None:
        raise Reject(404, OFF)


def client_id() -> str:
    """Return who to count wrong tokens against: the peer, or the trusted proxy's client."""
    return request.remote_addr or "unknown"


def check_token(offered: str, via: str) -> TokenCheck:
    """Compare an offered token with the configured one, counting and logging wrong ones."""
    client = client_id()
    throttle = access().throttle
    if throttle.retry_after(client) is not None:
        log.warning("ops.login_throttled", extra={"client": client, "source": via})
        return TokenCheck.THROTTLED
    token = ops_token()
    if token is not None and hmac.compare_digest(offered.encode(), token.encode()):
        return TokenCheck.RIGHT
    failures = throttle.record_failure(client)
    log.warning("ops.login_failed", extra={"client": client, "source": via, "failures": failures})
    return TokenCheck.WRONG


def raise_throttled() -> None:
    """Raise the 429 for the current client."""
    wait = access().throttle.retry_after(client_id())
    raise Throttled(wait or 1)


def current_caller() -> Caller | None:
    """Return the authorised caller, or None; a wrong bearer token is 401 (429 when throttled)."""
    require_enabled()
    try:
        return _caller()
    except RedisError as exc:
        log.warning("ops.redis_unavailable")
        raise Reject(503, REDIS_DOWN) from exc


def _caller() -> Caller | None:
    header = request.headers.get("Authorization")
    if header is not None and header[:7].lower() == "bearer ":
        outcome = check_token(header[7:].strip(), "bearer")
        if outcome is TokenCheck.THROTTLED:
            raise_throttled()
        if outcome is TokenCheck.WRONG:
            raise Reject(401, "missing or wrong ops bearer token")
        return Caller(session=None)
    session_id = request.cookies.get(COOKIE, "")
    if session_id:
        found = access().sessions.find(session_id, time.time(), current_fingerprint())
        if found is not None:
            return Caller(session=found)
    return None


def page_caller() -> Caller | None:
    """Return the caller of an HTML page, None (show the login form) when not authorised.

    A wrong bearer token was counted already; the page then answers as for no token.
    """
    try:
        return current_caller()
    except Reject as exc:
        if exc.status != 401:
            raise
        return None


def signed_in_page(
    view: Callable[..., ResponseReturnValue],
) -> Callable[..., ResponseReturnValue]:
    """Wrap an HTML page view: send a caller who is not signed in to the login form.

    The view gets the authorised `caller` as a keyword argument besides its URL's arguments.
    """

    @functools.wraps(view)
    def page(**url_args: object) -> ResponseReturnValue:
        caller = page_caller()
        if caller is None:
            return redirect(url_for("ops_page.login_form"), 303)
        return view(caller=caller, **url_args)

    return page


def require_caller() -> Caller:
    """Return the authorised caller or answer 401."""
    caller = current_caller()
    if caller is None:
        raise Reject(401, "missing or wrong ops bearer token")
    return caller


def require_unforged(caller: Caller, offered_csrf: str | None) -> None:
    """Refuse a state-changing call a session makes without its CSRF token from its own origin."""
    if caller.session is None:
        return  # the bearer header: no browser adds it on its own, so no forgery is possible
    if offered_csrf is None:
        raise Reject(403, "missing or stale form token: reload the ops page")
    if not hmac.compare_digest(offered_csrf.encode(), caller.session.csrf.encode()):
        raise Reject(403, "missing or stale form token: reload the ops page")
    check_same_origin()


def own_origin() -> str:
    """Return this receiver's origin as the client sees it (the trusted proxy's, if any)."""
    return f"{request.scheme}://{request.host}".lower()


def check_same_origin() -> None:
    """Refuse a request whose Origin (else Referer) is not this receiver's own origin."""
    expected = own_origin()
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin.strip().lower() != expected:
            log.warning("ops.cross_origin_refused", extra={"origin": origin[:200]})
            raise Reject(403, "cross-origin request refused: Origin is not this ops page")
        return
    referer = request.headers.get("Referer")
    if not referer:
        raise Reject(
            403, "no Origin or Referer header: cannot tell that the request comes from this page"
        )
    parts = urlsplit(referer.strip())
    if f"{parts.scheme}://{parts.netloc}".lower() != expected:
        log.warning("ops.cross_origin_refused", extra={"referer": referer[:200]})
        raise Reject(403, "cross-origin request refused: Referer is not this ops page")


def form_field(name: str, *, ascii_only: bool = False) -> str | None:
    """Return one plain text form field, None when absent; 400 for anything malformed."""
    if request.mimetype not in FORM_TYPES:
        raise Reject(400, "send the form as application/x-www-form-urlencoded")
    if name in request.files:
        raise Reject(400, f"form field {name!r} must be text, not a file")
    values = request.form.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise Reject(400, f"form field {name!r} is given more than once")
    value = values[0]
    if len(value) > MAX_FIELD_LENGTH:
        raise Reject(400, f"form field {name!r} is longer than {MAX_FIELD_LENGTH} characters")
    if ascii_only and not value.isascii():
        raise Reject(400, f"form field {name!r} must be ASCII")
    return value


def offered_csrf() -> str | None:
    """Return the CSRF token the request offers: the X-CSRF-Token header, else the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        if not header.isascii() or len(header) > MAX_FIELD_LENGTH:
            raise Reject(400, f"{CSRF_HEADER} header must be ASCII")
        return header
    if request.mimetype in FORM_TYPES:
        return form_field(CSRF_FIELD, ascii_only=True)
    return None


def cookie_secure() -> bool:
    """Tell whether the session cookie must be Secure: configured, or the request is HTTPS."""
    return bool(services().settings.ops_cookie_secure or request.is_secure)
