"""The receiver's metrics and log context: `GET /metrics`, and hooks around every request."""

from __future__ import annotations

import sys
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, has_request_context, request
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import RedisError

from handlers.services import services
from regpilot.observability import metrics
from regpilot.observability.logging import bind, unbind
from regpilot.stores.redis_store import RedisStore

blueprint = Blueprint("metrics", __name__)
WEBHOOK_PREFIX = "/webhooks/"
_HEADER_DELIVERY_IDS = ("X-MLflow-Delivery-Id", "webhook-id")
_MAX_LOGGED_ID = 200


def note_webhook(source: str, summary: dict[str, Any]) -> None:
    """Remember which source and event this request is, for its metrics and log lines.

    Call it once the delivery is verified and parsed; the response then decides the outcome.
    """
    if not has_request_context():
        return
    g.regpilot_webhook = (source, str(summary.get("event") or "unknown"), time.perf_counter())
    g.regpilot_log_token_inner = bind(**{k: summary.get(k) for k in ("run_id", "model", "version")})


class StoreCollector(Collector):
    """Read the dead-letter count from Redis at scrape time (shared by every process)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    def collect(self) -> Any:
        up = GaugeMetricFamily("regpilot_redis_up", "Whether Redis answered this scrape.")
        try:
            count = self.store.dead_letter_count()
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "regpilot_dead_letters_current",
            "Dead letters waiting for a retry or a drop.",
            value=count,
        )


@blueprint.get("/metrics")
def scrape() -> Response:
    """Return the receiver's metrics in the Prometheus text format."""
    body = metrics.exposition([StoreCollector(services().store)])
    return Response(body, 200, content_type=metrics.CONTENT_TYPE)


def _source_of_view() -> str:
    view = current_app.view_functions.get(request.endpoint or "")
    module = sys.modules.get(getattr(view, "__module__", ""), None)
    source = getattr(module, "SOURCE", None)
    if isinstance(source, str):
        return source
    return request.path[len(WEBHOOK_PREFIX) :].replace("/", "_") or "unknown"


def _outcome(response: Response) -> str:
    status = response.status_code
    if status == 503:
        return "unavailable"
    if 400 <= status < 500:
        return "rejected"
    if status >= 500:
        return "error"
    body = response.get_json(silent=True) if response.is_json else None
    answer = body.get("status") if isinstance(body, dict) else None
    return answer if answer in ("queued", "duplicate", "ignored") else "accepted"


def _before() -> None:
    fields: dict[str, Any] = {}
    if request.path.startswith(WEBHOOK_PREFIX):
        for header in _HEADER_DELIVERY_IDS:
            value = request.headers.get(header)
            if value:
                # Unverified yet, but it is what ties this line to the sender's delivery log.
                fields["delivery_id"] = value[:_MAX_LOGGED_ID]
                break
    g.regpilot_log_token = bind(**fields)


def _after(response: Response) -> Response:
    if request.path.startswith(WEBHOOK_PREFIX) and request.url_rule is not None:
        noted = g.get("regpilot_webhook")
        source, event, started = noted if noted else (_source_of_view(), "unknown", None)
        outcome = _outcome(response)
        metrics.WEBHOOKS.labels(source=source, event=event, outcome=outcome).inc()
        if response.status_code == 401:
            metrics.SIGNATURE_FAILURES.labels(source=source).inc()
        elif outcome == "duplicate":
            metrics.DUPLICATES.labels(source=source).inc()
        elif outcome == "queued" and started is not None:
            metrics.ENQUEUE_SECONDS.labels(source=source).observe(time.perf_counter() - started)
    return response


def _teardown(_exc: BaseException | None) -> None:
    for name in ("regpilot_log_token_inner", "regpilot_log_token"):
        token = g.pop(name, None)
        if token is not None:
            unbind(token)


def install(app: Flask) -> None:
    """Serve /metrics and count every webhook request, binding its ids to the log context."""
    app.register_blueprint(blueprint)
    app.before_request(_before)
    app.after_request(_after)
    app.teardown_request(_teardown)
