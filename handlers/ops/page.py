"""`GET /ops/`: the server-rendered ops page, its login form and its Retry and Drop buttons.

Access: the ops bearer token in an Authorization header, or a server-side session the login form
starts after checking the same token (handlers/ops/auth.py). Every form posted with a session
carries the session's CSRF token and must come from this page's origin. A dead letter's id
travels in the form body, so any character works (`/`, `%`, spaces, unicode).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from kombu.exceptions import KombuError, OperationalError
from redis import RedisError

from handlers.errors import Reject
from handlers.ops.auth import (
    COOKIE,
    COOKIE_PATH,
    REDIS_DOWN,
    Caller,
    TokenCheck,
    access,
    check_token,
    client_id,
    cookie_secure,
    current_caller,
    current_fingerprint,
    form_field,
    offered_csrf,
    require_enabled,
    require_unforged,
    signed_in_page,
)
from handlers.services import services
from regpilot.core.ops_query import (
    OUTCOMES,
    REFRESH_SECONDS,
    SOURCES,
    BadQuery,
    PageQuery,
    parse_query,
)
from regpilot.queue import names
from regpilot.queue.replay import UnknownDeadLetter, replay
from regpilot.registry.mlflow_http import MlflowUnavailable, is_http, registered_aliases
from regpilot.stores.redis_store import UnknownCursor

log = logging.getLogger("regpilot.ops")
blueprint = Blueprint(
    "ops_page",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/ops/static",
)

EVENTS_PER_PAGE = 50
DEAD_LETTERS_PER_PAGE = 25
MODELS_SHOWN = 25
DECISIONS_SHOWN = 5
MLFLOW_CALL_TIMEOUT = 2.0
MLFLOW_PAGE_BUDGET = 5.0  # seconds of MLflow reads one page render may spend, in all
NOTICES = {
    "requeued": "Retry of {letter} queued. It leaves this list when the task succeeds.",
    "dropped": "Dead letter {letter} dropped.",
    "unknown": "No dead letter {letter} (it may have succeeded already).",
    "unavailable": "The queue is unavailable; nothing was retried. Try again shortly.",
    "requeued_all": "Retry of {letter} dead letter(s) queued. Each leaves this list on success.",
}
GOOD_NOTICES = ("requeued", "dropped", "requeued_all")
# The filters Retry-all carries from its confirm page to its POST (paging is not one of them).
FILTER_FIELDS = ("model", "source", "outcome", "q")


def _state_changing_caller() -> Caller:
    """Return the caller of a page form: authorised, with its CSRF token, from this origin."""
    caller = current_caller()
    if caller is None:
        raise Reject(401, "log in first")
    require_unforged(caller, offered_csrf())
    return caller


def _letter_field(letter_id: str | None) -> str:
    if letter_id is not None:
        return letter_id
    letter = form_field("letter")
    if not letter:
        raise Reject(400, "missing form field 'letter' (the dead letter's id)")
    return letter


def _back_to_page(
    notice: str, letter: str, keep: dict[str, str] | None = None
) -> ResponseReturnValue:
    query = urlencode({**(keep or {}), "notice": notice, "letter": letter})
    return redirect(f"{url_for('ops_page.page')}?{query}#dead-letters", 303)


@blueprint.get("/ops/login")
def login_form() -> ResponseReturnValue:
    """Show the login form."""
    require_enabled()
    return render_template("ops/login.html", error=None)


@blueprint.post("/ops/login")
def login() -> ResponseReturnValue:
    """Check the offered ops token and start a session (wrong tokens are counted per client)."""
    require_enabled()
    offered = form_field("token")
    if offered is None:
        raise Reject(400, "missing form field 'token'")
    try:
        return _start_session(offered)
    except RedisError as exc:
        log.warning("ops.redis_unavailable")
        raise Reject(503, REDIS_DOWN) from exc


def _start_session(offered: str) -> ResponseReturnValue:
    """Check the token; if right, start a session and set its cookie."""
    outcome = check_token(offered, "login")
    if outcome is TokenCheck.THROTTLED:
        wait = access().throttle.retry_after(client_id()) or 1
        error = f"Too many wrong tokens from your address. Try again in {wait} s."
        return render_template("ops/login.html", error=error), 429, {"Retry-After": str(wait)}
    if outcome is TokenCheck.WRONG:
        return render_template("ops/login.html", error="That is not the ops token."), 401
    old = request.cookies.get(COOKIE)
    if old:
        access().sessions.revoke(old)  # a fresh id at every login: no session fixation
    session = access().sessions.start(time.time(), current_fingerprint())
    log.info("ops.login", extra={"client": client_id()})
    response = redirect(url_for("ops_page.page"), 303)
    response.set_cookie(
        COOKIE,
        session.session_id,
        max_age=services().settings.ops_session_seconds,
        path=COOKIE_PATH,
        secure=cookie_secure(),
        httponly=True,
        samesite="Strict",
    )
    return response


@blueprint.post("/ops/logout")
def logout() -> ResponseReturnValue:
    """End the session in Redis (a copied cookie stops working too) and clear the cookie."""
    caller = _state_changing_caller()
    if caller.session is not None:
        access().sessions.revoke(caller.session.session_id)
        log.info("ops.logout", extra={"client": client_id()})
    response = redirect(url_for("ops_page.login_form"), 303)
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=cookie_secure(), httponly=True, samesite="Strict"
    )
    return response


@blueprint.post("/ops/retry")
@blueprint.post("/ops/retry/<path:letter_id>")
def retry(letter_id: str | None = None) -> ResponseReturnValue:
    """Queue a dead letter again (id in the form's `letter` field), then show the page."""
    _state_changing_caller()
    letter = _letter_field(letter_id)
    ctx = services()
    try:
        replay(ctx.store, ctx.celery, letter, ctx.settings.task_queue)
        notice = "requeued"
        log.info("ops.dead_letter_retried", extra={"dead_letter_id": letter})
    except UnknownDeadLetter:
        notice = "unknown"
    except (OperationalError, KombuError, RedisError, OSError):
        notice = "unavailable"
    return _back_to_page(notice, letter)


@blueprint.post("/ops/drop")
def drop() -> ResponseReturnValue:
    """Drop a dead letter without replaying it (id in the form's `letter` field)."""
    _state_changing_caller()
    letter = _letter_field(None)
    try:
        dropped = services().store.drop_dead_letter(letter)
    except RedisError:
        return _back_to_page("unavailable", letter)
    if dropped:
        log.info("ops.dead_letter_dropped", extra={"dead_letter_id": letter})
    return _back_to_page("dropped" if dropped else "unknown", letter)


@blueprint.get("/ops/retry-all")
@signed_in_page
def retry_all_confirm(caller: Caller) -> ResponseReturnValue:
    """Ask before retrying every dead letter the page's filters select."""
    query = _page_query()
    try:
        letters = _letters(query)
    except RedisError as exc:
        raise Reject(503, REDIS_DOWN) from exc
    return render_template(
        "ops/confirm_retry_all.html",
        letters=letters,
        query=query,
        csrf=caller.csrf,
    )


@blueprint.post("/ops/retry-all")
def retry_all() -> ResponseReturnValue:
    """Queue again every dead letter the confirmed filters select, then show the page."""
    _state_changing_caller()
    if form_field("confirm") != "yes":
        raise Reject(400, "Retry-all needs its confirmation: form field 'confirm' must be 'yes'")
    filters = {name: form_field(name) or "" for name in FILTER_FIELDS}
    query = _parsed({name: value for name, value in filters.items() if value})
    ctx = services()
    queued = 0
    notice = "requeued_all"
    try:
        for letter in _letters(query):
            try:
                replay(ctx.store, ctx.celery, letter["id"], ctx.settings.task_queue)
                queued += 1
            except UnknownDeadLetter:
                continue  # its earlier retry succeeded meanwhile: one fewer to queue
    except (OperationalError, KombuError, RedisError, OSError):
        notice = "unavailable"
    log.info("ops.dead_letters_retried", extra={"count": queued})
    return _back_to_page(notice, str(queued), query.link())


def _page_query() -> PageQuery:
    return _parsed(request.args)


def _parsed(args: Any) -> PageQuery:
    try:
        return parse_query(args)
    except BadQuery as exc:
        raise Reject(400, str(exc)) from exc


def _letters(query: PageQuery) -> list[dict[str, Any]]:
    """Return the dead letters the query selects, oldest first, with the columns filters use."""
    rows = (_letter_row(letter) for letter in services().store.dead_letters())
    return [row for row in rows if query.matches(row)]


def _letter_row(letter: dict[str, Any]) -> dict[str, Any]:
    fields = names.log_fields(str(letter.get("task", "")), letter.get("args") or [])
    kwargs = letter.get("kwargs") or {}
    return {
        **letter,
        "model": str(fields.get("model") or ""),
        "run_id": str(fields.get("run_id") or fields.get("job_run_id") or ""),
        "version": fields.get("version"),
        "source": kwargs.get("source") or "worker",
        "delivery_id": kwargs.get("delivery_id") or "",
        "outcome": "dead",
    }


@dataclass
class ModelRow:
    """One model on the page: its aliases and its latest decisions."""

    name: str
    aliases: list[tuple[str, int | None]]
    alias_source: str
    decisions: list[dict[str, Any]] = field(default_factory=list)


@blueprint.get("/ops/")
@signed_in_page
def page(caller: Caller) -> ResponseReturnValue:
    """Render the filtered, paged events and dead letters, and the models."""
    query = _page_query()
    ctx = ops = services()
    notice_code = request.args.get("notice", "")
    if notice_code and notice_code not in NOTICES:
        raise Reject(400, f"notice must be one of {', '.join(NOTICES)}")
    notice = NOTICES.get(notice_code, "").format(letter=request.args.get("letter", ""))
    mlflow_up = ops.mlflow.reachable()
    view: dict[str, Any] = {
        "redis_ok": True,
        "events": [],
        "next_before": "",
        "letters": [],
        "letter_count": 0,
        "letter_pages": 1,
        "models": [],
        "model_names": [],
    }
    try:
        view["events"], view["next_before"] = ctx.store.event_page(
            query.matches, EVENTS_PER_PAGE, query.before
        )
        letters = _letters(query)
        first = (query.page - 1) * DEAD_LETTERS_PER_PAGE
        view["letters"] = letters[first : first + DEAD_LETTERS_PER_PAGE]
        view["letter_count"] = len(letters)
        view["letter_pages"] = max(1, -(-len(letters) // DEAD_LETTERS_PER_PAGE))
        view["model_names"] = ctx.store.models()
        view["models"] = _models(view["model_names"][:MODELS_SHOWN], mlflow_up is True)
    except UnknownCursor as exc:
        raise Reject(
            400,
            "before names an event the bounded history no longer holds: "
            "start again from the newest page (leave out before)",
        ) from exc
    except RedisError:
        log.warning("ops.page_redis_unavailable")
        view["redis_ok"] = False
    body = render_template(
        "ops/page.html",
        mlflow_up=mlflow_up,
        notice=notice,
        notice_error=notice_code not in GOOD_NOTICES,
        csrf=caller.csrf,
        logged_in=caller.session is not None,
        query=query,
        sources=SOURCES,
        outcomes=OUTCOMES,
        refresh_choices=REFRESH_SECONDS,
        events_per_page=EVENTS_PER_PAGE,
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
