"""`POST /webhooks/mlflow`: MLflow's own model-registry webhooks (X-MLflow-* signed)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from handlers.errors import Reject
from handlers.services import services
from handlers.webhooks.intake import enqueue, ignored, signed_payload
from regpilot.core.events import MlflowEnvelope, ModelVersionCreated, PayloadError, parse_model
from regpilot.core.signatures import MLFLOW_DELIVERY_ID, verify_mlflow
from regpilot.core.tags import REGISTERED_BY, REGISTERED_BY_US
from regpilot.queue import names

blueprint = Blueprint("mlflow", __name__)
SOURCE = "mlflow"


@blueprint.post("/webhooks/mlflow")
def registry_event() -> ResponseReturnValue:
    """Verify, parse, dedupe and queue an MLflow registry event."""
    delivery_id, envelope = signed_payload(
        SOURCE,
        services().settings.mlflow_webhook_secrets,
        verify_mlflow,
        MLFLOW_DELIVERY_ID,
        MlflowEnvelope,
        "MLflow webhook envelope",
    )
    summary: dict[str, object] = {"event": envelope.event}
    if envelope.event != "model_version.created":
        return ignored(SOURCE, delivery_id, f"event {envelope.event} needs no action", summary)
    try:
        created: ModelVersionCreated = parse_model(ModelVersionCreated, envelope.data)
    except PayloadError as exc:
        raise Reject(400, f"invalid model_version.created data: {exc.reason}") from exc
    summary.update(model=created.name, version=created.version, run_id=created.run_id)
    if created.tags.get(REGISTERED_BY) == REGISTERED_BY_US:
        return ignored(SOURCE, delivery_id, "version registered by regpilot", summary)
    return enqueue(
        SOURCE, delivery_id, names.MODEL_VERSION_CREATED, [created.name, created.version], summary
    )
