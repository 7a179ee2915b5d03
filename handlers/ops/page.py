"""`GET /ops/`: the server-rendered ops page, its login form and its Retry button.

Access: the ops bearer token in an Authorization header, or a session cookie the login form sets
after checking the same token. Forms posted with a session carry a CSRF token; the cookie is
SameSite=Strict and scoped to /ops.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from kombu.exceptions import KombuError, OperationalError
from redis import RedisError

from handlers.errors import Reject
from handlers.ops.auth import SESSION_FLAG, ops_token, token_matches
from handlers.services import services
from regpilot.queue.replay import UnknownDeadLetter, replay
from regpilot.registry.mlflow_http import MlflowUnavailable, is_http, registered_aliases

log = logging.getLogger("regpilot.ops")
blueprint = Blueprint("ops_page", __name__, template_folder="templates")

CSRF_KEY = "regpilot_csrf"
EVENTS_SHOWN = 50
DEAD_LETTERS_SHOWN = 200
MODELS_SHOWN = 25
DECISIONS_SHOWN = 5
MLFLOW_CALL_TIMEOUT = 2.0
MLFLOW_PAGE_BUDGET = 5.0  # seconds of MLflow reads one page render may spend, in all
NOTICES = {
    "requeued": "Retry of {letter} queued. It leaves this list when the task succeeds.",
    "unknown": "No dead letter {letter} (it may have succeeded already).",
    "unavailable": "The queue is unavailable; nothing was retried. Try again shortly.",
}


def _bearer_ok() -> bool:
    header = request.headers.get("Authorization", "")
    return header.startswith("Bearer ") and token_matches(header[len("Bearer ") :].strip())


def _authorised() -> bool:
    """Return whether the caller may see the page; 404 when the ops token is unset."""
    if ops_token() is None:
        raise Reject(404, "ops API disabled: set REGPILOT_OPS_TOKEN to turn it on")
    return _bearer_ok() or session.get(SESSION_FLAG) is True


def _check_csrf() -> None:
    if _bearer_ok():
        return  # a header a browser never adds on its own: no cross-site forgery possible
    expected = session.get(CSRF_KEY)
    offered = request.form.get("csrf", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, offered):
        raise Reject(403, "missing or stale form token: reload the ops page")


@blueprint.get("/ops/login")
def login_form() -> ResponseReturnValue:
    """Show the login form."""
    if ops_token() is None:
        raise Reject(404, "ops API disabled: set REGPILOT_OPS_TOKEN to turn it on")
    return render_template("ops/login.html", error=None)


@blueprint.post("/ops/login")
def login() -> ResponseReturnValue:
    """Check the offered ops token and start a session."""
    if ops_token() is None:
        raise Reject(404, "ops API disabled: set REGPILOT_OPS_TOKEN to turn it on")
    if not token_matches(request.form.get("token", "")):
        log.warning("ops.login_failed", extra={"reason": "wrong token"})
        return render_template("ops/login.html", error="That is not the ops token."), 401
    session.clear()
    session.permanent = True
    session[SESSION_FLAG] = True
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    log.info("ops.login")
    return redirect(url_for("ops_page.page"), 303)


@blueprint.post("/ops/logout")
def logout() -> ResponseReturnValue:
    """End the session."""
    _check_csrf()
    session.clear()
    return redirect(url_for("ops_page.login_form"), 303)


@blueprint.post("/ops/retry/<letter_id>")
def retry(letter_id: str) -> ResponseReturnValue:
    """Queue a dead letter again, then show the page with the result."""
    if not _authorised():
        raise Reject(401, "log in first")
    _check_csrf()
    ctx = services()
    try:
        replay(ctx.store, ctx.celery, letter_id, ctx.settings.task_queue)
        notice = "requeued"
        log.info("ops.dead_letter_retried", extra={"dead_letter_id": letter_id})
    except UnknownDeadLetter:
        notice = "unknown"
    except (OperationalError, KombuError, RedisError, OSError):
        notice = "unavailable"
    query = urlencode({"notice": notice, "letter": letter_id})
    return redirect(f"{url_for('ops_page.page')}?{query}#dead-letters", 303)


@dataclass
class ModelRow:
    """One model on the page: its aliases and its latest decisions."""

    name: str
    aliases: list[tuple[str, int | None]]
    alias_source: str
    decisions: list[dict[str, Any]] = field(default_factory=list)


@blueprint.get("/ops/")
def page() -> ResponseReturnValue:
    """Render events, dead letters and models."""
    if not _authorised():
        return redirect(url_for("ops_page.login_form"), 303)
    ctx = ops = services()
    notice_code = request.args.get("notice", "")
    notice = NOTICES.get(notice_code, "").format(letter=request.args.get("letter", ""))
    mlflow_up = ops.mlflow.reachable()
    view: dict[str, Any] = {"redis_ok": True, "events": [], "letters": [], "models": []}
    try:
        view["events"] = ctx.store.events(EVENTS_SHOWN)
        view["letters"] = ctx.store.dead_letters()[:DEAD_LETTERS_SHOWN]
        view["models"] = _models(ctx.store.models()[:MODELS_SHOWN], mlflow_up is True)
    except RedisError:
        log.warning("ops.page_redis_unavailable")
        view["redis_ok"] = False
    body = render_template(
        "ops/page.html",
        mlflow_up=mlflow_up,
        notice=notice,
        notice_error=notice_code != "requeued",
        csrf=session.get(CSRF_KEY, ""),
        logged_in=session.get(SESSION_FLAG) is True,
        **view,
    )
    return body, 200 if view["redis_ok"] else 503


def _models(names: list[str], read_mlflow: bool) -> list[ModelRow]:
    ctx = ops = services()
    tracking_uri = ctx.settings.mlflow_tracking_uri
    deadline = time.monotonic() + MLFLOW_PAGE_BUDGET
    mlflow_ok = read_mlflow and is_http(tracking_uri)
    rows = []
    for name in names:
        policy = ops.policy.for_model(name).aliases
        wanted = (policy.champion, policy.challenger)
        decisions = ctx.store.decisions(name, 50)
        current: dict[str, int] | None = None
        if mlflow_ok and time.monotonic() < deadline:
            try:
                current = registered_aliases(tracking_uri, name, MLFLOW_CALL_TIMEOUT)
            except MlflowUnavailable:
                mlflow_ok = False  # one failure is enough: do not make the page wait N times
        source = "MLflow"
        if current is None:
            current, source = _recorded_aliases(decisions), "regpilot's records"
        rows.append(
            ModelRow(
                name,
                [(alias, current.get(alias)) for alias in wanted],
                source,
                decisions[:DECISIONS_SHOWN],
            )
        )
    return rows


def _recorded_aliases(decisions: list[dict[str, Any]]) -> dict[str, int]:
    """Return each alias's version as regpilot last moved it (newest decision first)."""
    found: dict[str, int] = {}
    for decision in decisions:
        alias, version = decision.get("alias"), decision.get("version")
        moved = decision.get("kind") in ("alias", "promotion")
        if moved and isinstance(alias, str) and alias not in found and isinstance(version, int):
            found[alias] = version
    return found


@blueprint.app_template_filter("when")
def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
