"""`POST /webhooks/runs`: a training job says its run finished (Standard Webhooks signed)."""

from __future__ import annotations

import logging

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from core.events import PayloadError, RunCompleted, parse_model
from core.signatures import SignatureError, verify_standard
from handlers.errors import Reject
from handlers.intake import enqueue, intake, parse_json_object, read_body

log = logging.getLogger("regpilot.webhook")
blueprint = Blueprint("runs", __name__)
SOURCE = "runs"
TASK = "regpilot.run_completed"


@blueprint.post("/webhooks/runs")
def run_completed() -> ResponseReturnValue:
    """Verify, parse, dedupe and queue a run-completion notification."""
    ctx = intake()
    body = read_body(request, ctx.settings.max_body_bytes)
    delivery_id = _verify(body)
    data = parse_json_object(request, body)
    try:
        event: RunCompleted = parse_model(RunCompleted, data)
    except PayloadError as exc:
        raise Reject(400, f"invalid run notification: {exc.reason}") from exc
    summary = {"event": "run.completed", "run_id": event.run_id, "model": event.model_name}
    return enqueue(SOURCE, delivery_id, TASK, [event.run_id, event.model_name], summary)


def _verify(body: bytes) -> str:
    ctx = intake()
    secrets = ctx.settings.run_webhook_secrets
    if not secrets:
        if ctx.settings.insecure_no_signature:
            return request.headers.get("webhook-id") or _body_identity(body)
        raise Reject(401, "no secret configured for this endpoint")
    try:
        return verify_standard(
            secrets,
            request.headers,
            body,
            now=ctx.clock(),
            tolerance=ctx.settings.timestamp_tolerance_seconds,
        )
    except SignatureError as exc:
        log.warning("webhook.signature_invalid", extra={"source": SOURCE, "reason": exc.reason})
        raise Reject(401, exc.reason) from exc


def _body_identity(body: bytes) -> str:
    import hashlib

    return "body-" + hashlib.sha256(body).hexdigest()[:32]
