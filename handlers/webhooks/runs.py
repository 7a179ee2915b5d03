"""`POST /webhooks/runs`: a training job says its run finished (Standard Webhooks signed)."""

from __future__ import annotations

import functools

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from handlers.services import services
from handlers.webhooks.intake import enqueue, parse_payload, read_body, verify_delivery
from regpilot.core.events import RunCompleted, parse_model
from regpilot.core.signatures import STANDARD_ID, verify_standard
from regpilot.queue import names

blueprint = Blueprint("runs", __name__)
SOURCE = "runs"


@blueprint.post("/webhooks/runs")
def run_completed() -> ResponseReturnValue:
    """Verify, parse, dedupe and queue a run-completion notification."""
    ctx = services()
    body = read_body(request, ctx.settings.max_body_bytes)
    delivery_id = verify_delivery(
        SOURCE, ctx.settings.run_webhook_secrets, verify_standard, STANDARD_ID, request, body
    )
    event = parse_payload(
        request, body, functools.partial(parse_model, RunCompleted), "run notification"
    )
    summary = {"event": "run.completed", "run_id": event.run_id, "model": event.model_name}
    return enqueue(
        SOURCE, delivery_id, names.RUN_COMPLETED, [event.run_id, event.model_name], summary
    )
