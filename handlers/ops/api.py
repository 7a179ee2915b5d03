"""`/ops/` JSON API: event history, dead letters (list, show, retry, retry all, drop), decisions.

Reads need the bearer token or a page session. Writes (POST, DELETE) need the bearer token, or
a session plus its CSRF token (X-CSRF-Token header) from the page's own origin.
Dead letter ids may hold any character, `/` included (a `path` converter; quote the rest).
"""

from __future__ import annotations

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from kombu.exceptions import KombuError, OperationalError
from redis import RedisError

from handlers.errors import Reject, json_response
from handlers.ops.auth import offered_csrf, require_caller, require_unforged
from handlers.services import services
from regpilot.queue.replay import UnknownDeadLetter, replay, replay_all

blueprint = Blueprint("ops_api", __name__, url_prefix="/ops")


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@blueprint.before_request
def _authorise() -> None:
    caller = require_caller()
    if request.method not in SAFE_METHODS:
        require_unforged(caller, offered_csrf())


def _limit(default: int = 50) -> int:
    raw = request.args.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise Reject(400, "limit must be an integer from 1 to 10000")
    return int(raw)


@blueprint.get("/events")
def events() -> ResponseReturnValue:
    """Return received deliveries with their outcome, newest first."""
    return json_response(200, events=services().store.events(_limit()))


@blueprint.get("/dead-letters")
def dead_letters() -> ResponseReturnValue:
    """Return every dead letter, oldest first."""
    return json_response(200, dead_letters=services().store.dead_letters())


@blueprint.get("/dead-letters/<path:letter_id>")
def dead_letter(letter_id: str) -> ResponseReturnValue:
    """Return one dead letter with its payload, error and attempt count."""
    letter = services().store.dead_letter(letter_id)
    if letter is None:
        raise Reject(404, f"no dead letter {letter_id}")
    return json_response(200, dead_letter=letter)


@blueprint.post("/dead-letters/<path:letter_id>/retry")
def retry_one(letter_id: str) -> ResponseReturnValue:
    """Queue a dead letter again; it leaves the store when the retry succeeds."""
    ctx = services()
    try:
        result = replay(ctx.store, ctx.celery, letter_id, ctx.settings.task_queue)
    except UnknownDeadLetter as exc:
        raise Reject(404, f"no dead letter {letter_id}") from exc
    except (OperationalError, KombuError, RedisError, OSError) as exc:
        raise Reject(503, "queue unavailable, retry later") from exc
    return json_response(202, **result)


@blueprint.post("/dead-letters/retry-all")
def retry_every() -> ResponseReturnValue:
    """Queue every dead letter again."""
    ctx = services()
    try:
        results = replay_all(ctx.store, ctx.celery, ctx.settings.task_queue)
    except (OperationalError, KombuError, RedisError, OSError) as exc:
        raise Reject(503, "queue unavailable, retry later") from exc
    return json_response(202, requeued=results)


@blueprint.delete("/dead-letters/<path:letter_id>")
def drop(letter_id: str) -> ResponseReturnValue:
    """Drop a dead letter without replaying it."""
    if not services().store.drop_dead_letter(letter_id):
        raise Reject(404, f"no dead letter {letter_id}")
    return json_response(200, dropped=letter_id)


@blueprint.get("/models/<path:name>/history")
def history(name: str) -> ResponseReturnValue:
    """Return a model's decision records, newest first."""
    return json_response(200, model=name, decisions=services().store.decisions(name, _limit()))
