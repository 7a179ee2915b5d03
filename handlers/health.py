"""`GET /healthz`: the process is alive; `GET /readyz`: Redis answers and the policy loaded."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from handlers.errors import json_response
from handlers.services import services

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Answer 200 while the process runs."""
    return json_response(200, status="ok")


@blueprint.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Answer 200 when Redis answers and the policy loaded; report MLflow without failing.

    The receiver never calls MLflow while answering a webhook, so an MLflow outage must not
    take it out of a load balancer: deliveries are queued and the worker retries them.
    """

    redis_ok = services().store.ping()
    return json_response(
        200 if redis_ok else 503,
        status="ready" if redis_ok else "not ready",
        redis=redis_ok,
        policy=True,  # create_app refuses to build an app without a valid policy
        mlflow=services().mlflow.reachable(),
    )
