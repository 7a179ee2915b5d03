"""Post one decision event to one destination: the I/O edge of notifications.

The message is formatted in core (`regpilot/core/notifications.py`); here the destination's URL
and secret are read (from the variables the policy names), the run's experiment is looked up for
the MLflow UI link, and the message is posted. A destination that is down or overloaded (network
error, timeout, 408, 429, 5xx) raises `DestinationUnavailable`, which the task retries and then
dead-letters; one that refuses (any other status, a redirect, a missing secret) raises
`NotificationRefused`, a dead letter at once, since retrying cannot help.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from config.policy import NotificationDestination, Policy
from config.settings import Settings, notify_variable
from regpilot.core.notifications import (
    destination_url_problem,
    mlflow_links,
    slack_message,
    teams_message,
    with_links,
)
from regpilot.core.registry_port import Registry
from regpilot.core.signatures import STANDARD_PREFIX, sign_standard

log = logging.getLogger("regpilot.notifications")
_RETRIED_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
USER_AGENT = "regpilot-notify/1"


class DestinationUnavailable(Exception):
    """The destination did not take the message now (down, timeout, 429, 5xx): retry later."""


class NotificationRefused(Exception):
    """The message cannot be delivered as configured (4xx, redirect, missing URL or secret)."""


@dataclass(frozen=True)
class Outbound:
    """One HTTP request ready to send."""

    url: str
    body: bytes
    headers: dict[str, str]


def find_destination(policy: Policy, model: str, name: str) -> NotificationDestination:
    """Return the named destination of the model's policy (the policy may have changed)."""
    destination = policy.for_model(model).notifications.get(name)
    if destination is None:
        raise NotificationRefused(
            f"the policy of {model!r} no longer has a notification destination {name!r}"
        )
    return destination


def _variable(name: str, what: str, lookup: Callable[[str], SecretStr | None]) -> str:
    value = lookup(name)
    if value is None:
        raise NotificationRefused(f"{name} is not set: it holds the destination's {what}")
    return value.get_secret_value()


def prepare(
    destination: NotificationDestination,
    event: Mapping[str, Any],
    *,
    now: float,
    lookup: Callable[[str], SecretStr | None] = notify_variable,
) -> Outbound:
    """Return the request that delivers `event` to `destination`, formatted for its type."""
    url = destination.url or _variable(str(destination.url_env), "URL", lookup)
    problem = destination_url_problem(url)
    if problem:
        where = destination.url_env or "url"
        raise NotificationRefused(f"the destination URL ({where}) {problem}")
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if destination.type == "slack":
        body = json.dumps(slack_message(event)).encode()
    elif destination.type == "teams":
        body = json.dumps(teams_message(event)).encode()
    else:
        secret = _variable(str(destination.secret_env), "whsec_ signing secret", lookup)
        if not secret.startswith(STANDARD_PREFIX):
            raise NotificationRefused(
                f"{destination.secret_env} must be a Standard Webhooks secret (whsec_<base64>)"
            )
        body = json.dumps(event, separators=(",", ":")).encode()
        timestamp = int(now)
        # The id stays the same on every retry, so a receiver can drop a repeat.
        headers |= {
            "webhook-id": str(event["id"]),
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard(secret, str(event["id"]), timestamp, body),
        }
    return Outbound(url, body, headers)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect could downgrade to http or point elsewhere: a destination must answer itself.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(outbound: Outbound, timeout: float) -> int:
    """POST the request; return the 2xx status, or raise why it was not delivered."""
    request = urllib.request.Request(
        outbound.url, data=outbound.body, headers=outbound.headers, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        answer = exc.read(300).decode("utf-8", "replace")
        if exc.code in _RETRIED_STATUSES:
            raise DestinationUnavailable(f"the destination answered {exc.code}: {answer}") from exc
        raise NotificationRefused(f"the destination answered {exc.code}: {answer}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DestinationUnavailable(f"the destination is unreachable: {reason}") from exc


def experiment_of(registry: Registry, run_id: str | None) -> str | None:
    """Return the run's experiment id for its UI link; None when MLflow cannot say now."""
    if not run_id:
        return None
    try:
        return registry.get_run(run_id).experiment_id
    except Exception as exc:  # a link is a nicety: never fail or delay a delivery for it
        log.info("notify.no_run_link", extra={"run_id": run_id, "error": str(exc)[:200]})
        return None


def deliver(
    settings: Settings,
    policy: Policy,
    registry: Registry,
    model: str,
    destination_name: str,
    event: Mapping[str, Any],
) -> dict[str, Any]:
    """Deliver one event to one destination of the model's policy; return the task result."""
    destination = find_destination(policy, model, destination_name)
    data = event["data"]
    links = mlflow_links(
        settings.effective_mlflow_ui_url,
        model,
        data.get("version"),
        data.get("run_id"),
        experiment_of(registry, data.get("run_id")),
    )
    outbound = prepare(destination, with_links(event, links), now=time.time())
    status = post(outbound, settings.notify_timeout_seconds)
    log.info(
        "notify.delivered",
        extra={"model": model, "destination": destination_name, "event": event["type"]},
    )
    return {"outcome": "delivered", "status": status, "destination": destination_name}
