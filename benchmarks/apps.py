"""The two baselines regpilot's receiver is measured against, under the same gunicorn settings.

`gunicorn 'benchmarks.apps:bare_app()'`: a Flask endpoint that returns 202 and does no work (the
ceiling). `gunicorn 'benchmarks.apps:naive_app()'`: the receiver most teams write: verify the
signature, parse, Celery `send_task`; no dedupe, no history, no metrics, no log line.
"""

from __future__ import annotations

import json
import time

from flask import Flask, request
from flask.typing import ResponseReturnValue

from config.settings import Settings
from regpilot.core.signatures import SignatureError, verify_mlflow
from regpilot.queue.celery_config import create_celery


def bare_app() -> Flask:
    """Return the ceiling: read the body, answer 202."""
    app = Flask("bare")

    @app.post("/webhooks/mlflow")
    def accept() -> ResponseReturnValue:
        request.get_data()
        return {"status": "accepted"}, 202

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return {"status": "ok"}

    return app


def naive_app() -> Flask:
    """Return the naive receiver: verify, parse, publish with Celery; nothing else."""
    settings = Settings()
    celery = create_celery(settings)
    secrets = settings.mlflow_webhook_secrets
    app = Flask("naive")

    @app.post("/webhooks/mlflow")
    def accept() -> ResponseReturnValue:
        body = request.get_data()
        try:
            delivery_id = verify_mlflow(secrets, request.headers, body, now=time.time())
        except SignatureError as exc:
            return {"reason": exc.reason}, 401
        data = json.loads(body).get("data", {})
        celery.send_task(
            "regpilot.model_version_created",
            args=[data["name"], data["version"]],
            kwargs={"source": "mlflow", "delivery_id": delivery_id},
            queue=settings.task_queue,
        )
        return {"status": "queued", "delivery_id": delivery_id}, 202

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return {"status": "ok"}

    return app


def regpilot_without_io_app() -> Flask:
    """Return regpilot's receiver minus its Redis script and its log line (a diagnostic).

    What is left is the Python work per request (verify, parse, validate, metrics, respond):
    measured beside the others, it shows how much of the gap to the bare endpoint that work
    accounts for on its own. It queues nothing; never run it for real.
    """
    import logging

    from handlers import create_app
    from regpilot.stores.redis_store import RedisStore

    def claimed(self: RedisStore, *args: object, **kwargs: object) -> bool:
        return True

    RedisStore.claim_delivery = claimed  # type: ignore[method-assign]
    app = create_app()
    logging.getLogger("regpilot").setLevel(logging.WARNING)
    return app
