"""The steps every webhook shares: read bytes, verify, parse JSON safely, dedupe, enqueue."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis
from flask import Request, request
from flask.typing import ResponseReturnValue
from kombu.exceptions import KombuError, OperationalError

from handlers.errors import Reject, json_response
from handlers.services import services
from handlers.telemetry import note_webhook
from regpilot.core.events import PayloadError, parse_model
from regpilot.core.signatures import SignatureError
from regpilot.queue.dispatch import dispatch
from regpilot.queue.names import TaskSpec
from regpilot.stores.redis_store import RedisStore

log = logging.getLogger("regpilot.webhook")
T = TypeVar("T")
MAX_JSON_DEPTH = 32


def read_body(request: Request, limit: int) -> bytes:
    """Return the raw body (the signature covers these bytes), refusing oversized ones first."""
    if request.content_length is not None and request.content_length > limit:
        raise Reject(413, "request body too large", limit=limit)
    body = request.get_data(cache=True)
    if len(body) > limit:
        raise Reject(413, "request body too large", limit=limit)
    return body


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def verify_delivery(
    source: str,
    secrets: Sequence[str],
    verifier: Callable[..., str],
    id_header: str,
    request: Request,
    body: bytes,
) -> str:
    """Verify a delivery's signature and return its delivery id, or raise a 401 Reject.

    With no secret for this source, only insecure mode (local play) lets a delivery in; its id
    is then the sender's id header, else a hash of the body.
    """
    ctx = services()
    if not secrets:
        if ctx.settings.insecure_no_signature:
            return request.headers.get(id_header) or (
                "body-" + hashlib.sha256(body).hexdigest()[:32]
            )
        raise Reject(401, "no secret configured for this endpoint")
    try:
        return verifier(
            secrets,
            request.headers,
            body,
            now=ctx.clock(),
            tolerance=ctx.settings.timestamp_tolerance_seconds,
        )
    except SignatureError as exc:
        log.warning("webhook.signature_invalid", extra={"source": source, "reason": exc.reason})
        raise Reject(401, exc.reason) from exc


def signed_payload(
    source: str,
    secrets: Sequence[str],
    verifier: Callable[..., str],
    id_header: str,
    model: type[T],
    what: str,
) -> tuple[str, T]:
    """Read, verify and parse the current signed delivery: return its id and its payload."""
    body = read_body(request, services().settings.max_body_bytes)
    delivery_id = verify_delivery(source, secrets, verifier, id_header, request, body)
    parse: Callable[[dict[str, Any]], T] = functools.partial(parse_model, cast(Any, model))
    return delivery_id, parse_payload(request, body, parse, what)


def parse_payload(
    request: Request, body: bytes, parse: Callable[[dict[str, Any]], T], what: str
) -> T:
    """Parse a JSON object body with `parse`; a bad one is a 400 saying it is an invalid `what`."""
    data = parse_json_object(request, body)
    try:
        return parse(data)
    except PayloadError as exc:
        raise Reject(400, f"invalid {what}: {exc.reason}") from exc


def parse_json_object(request: Request, body: bytes) -> dict[str, Any]:
    """Parse a JSON object body, or raise a 4xx Reject that says why."""
    mimetype = (request.mimetype or "").lower()
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise Reject(415, "content type must be application/json")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Reject(400, "body is not valid UTF-8") from exc
    try:
        data = json.loads(text)
    except RecursionError as exc:
        raise Reject(400, "JSON nested too deeply") from exc
    except ValueError as exc:
        raise Reject(400, "body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise Reject(400, "body must be a JSON object")
    if _depth(data) > MAX_JSON_DEPTH:
        raise Reject(400, "JSON nested too deeply")
    return data


def enqueue(
    source: str,
    delivery_id: str,
    task: TaskSpec,
    args: list[Any],
    summary: dict[str, Any],
) -> ResponseReturnValue:
    """Claim the delivery id, then queue the task; answer 202, 200 duplicate or 503."""
    note_webhook(source, summary)
    ctx = services()
    try:
        task_id = dispatch(
            ctx.store,
            ctx.celery,
            ctx.settings.task_queue,
            source=source,
            delivery_id=delivery_id,
            task=task,
            args=args,
            summary=summary,
        )
    except (OperationalError, KombuError, redis.RedisError, OSError) as exc:
        log.warning(
            "webhook.enqueue_failed",
            extra={"source": source, "delivery_id": delivery_id, "error": type(exc).__name__},
        )
        raise Reject(503, "queue unavailable, retry later") from exc
    if task_id is None:
        log.info("webhook.duplicate", extra={"source": source, "delivery_id": delivery_id})
        _record_quietly(ctx.store, source, delivery_id, {**summary, "outcome": "duplicate"})
        return json_response(200, status="duplicate", delivery_id=delivery_id)
    log.info(
        "webhook.queued",
        extra={
            "source": source,
            "delivery_id": delivery_id,
            **{k: v for k, v in summary.items() if k in _LOGGED},
        },
    )
    return json_response(202, status="queued", delivery_id=delivery_id, task_id=task_id)


_LOGGED = {"event", "run_id", "model", "version"}


def ignored(
    source: str, delivery_id: str, reason: str, summary: dict[str, Any]
) -> ResponseReturnValue:
    """Answer 200 `ignored` (so the sender does not retry) and record it when Redis answers."""
    note_webhook(source, summary)
    log.info(
        "webhook.ignored", extra={"source": source, "delivery_id": delivery_id, "reason": reason}
    )
    _record_quietly(
        services().store, source, delivery_id, {**summary, "outcome": "ignored", "detail": reason}
    )
    return json_response(200, status="ignored", reason=reason, delivery_id=delivery_id)


def _record_quietly(
    store: RedisStore, source: str, delivery_id: str, summary: dict[str, Any]
) -> None:
    try:
        store.record_unqueued(source, delivery_id, summary)
    except redis.RedisError:
        pass  # the history is best effort for deliveries we do not queue
