"""`POST /webhooks/runs`: a training job says its run finished (Standard Webhooks signed)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from handlers.services import services
from handlers.webhooks.intake import enqueue, signed_payload
from regpilot.core.events import RunCompleted
from regpilot.core.signatures import STANDARD_ID, verify_standard
from regpilot.queue import names

blueprint = Blueprint("runs", __name__)
SOURCE = "runs"


@blueprint.post("/webhooks/runs")
def run_completed() -> ResponseReturnValue:
    """Verify, parse, dedupe and queue a run-completion notification."""
    secrets = services().settings.run_webhook_secrets
    delivery_id, event = signed_payload(
        SOURCE, secrets, verify_standard, STANDARD_ID, RunCompleted, "run notification"
    )
    summary = {"event": "run.completed", "run_id": event.run_id, "model": event.model_name}
    return enqueue(
        SOURCE, delivery_id, names.RUN_COMPLETED, [event.run_id, event.model_name], summary
    )
