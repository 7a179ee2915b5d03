"""Send the run-completion webhook, signed the Standard Webhooks way, from a training script."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from regpilot.core.signatures import sign_standard


class NotifyError(Exception):
    """regpilot did not accept the notification."""


def build_request(
    url: str,
    secret: str,
    run_id: str,
    model_name: str | None = None,
    *,
    message_id: str | None = None,
    timestamp: int | None = None,
) -> urllib.request.Request:
    """Return the signed POST request (separate so it can be inspected or sent elsewhere)."""
    payload: dict[str, Any] = {"run_id": run_id}
    if model_name:
        payload["model_name"] = model_name
    body = json.dumps(payload).encode()
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secret, message_id, timestamp, body),
    }
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


def notify_run(
    run_id: str,
    model_name: str | None = None,
    *,
    url: str = "http://127.0.0.1:8080/webhooks/runs",
    secret: str,
    timeout: float = 10.0,
    attempts: int = 3,
) -> dict[str, Any]:
    """Tell regpilot that `run_id` finished; return its JSON answer or raise NotifyError.

    Retries with the same message id on 5xx and connection errors, so regpilot deduplicates.
    """
    message_id = f"msg_{uuid.uuid4().hex}"
    last_error = ""
    for attempt in range(attempts):
        request = build_request(url, secret, run_id, model_name, message_id=message_id)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return dict(json.loads(response.read() or b"{}"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            if exc.code < 500:
                raise NotifyError(f"regpilot answered {exc.code}: {detail}") from exc
            last_error = f"{exc.code}: {detail}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(min(2**attempt, 5))
    raise NotifyError(f"regpilot unreachable after {attempts} attempts: {last_error}")
