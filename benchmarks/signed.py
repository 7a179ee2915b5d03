"""Pools of signed webhook requests: every request its own delivery id and a valid signature.

wrk's Lua has no HMAC, so the pool is signed here, just before each run (the receiver accepts
timestamps within 300 s), and the Lua script sends each entry once.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from regpilot.core.signatures import sign_mlflow, sign_standard

# A real `model_version.created` delivery of MLflow 3.17 (tests/fixtures/mlflow_samples), 283 B.
MLFLOW_BODY = (
    b'{"entity": "model_version", "action": "created", "timestamp": '
    b'"2026-11-27T08:27:32.399068+00:00", "data": {"name": "wh-demo-model", "version": "1", '
    b'"source": "models:/m-1a1516506d274b7f9598a49695be3d0a", "run_id": '
    b'"d43b5a9ffb7c4a4fb1324f855352688a", "tags": {}, "description": null}}'
)
PATH = "/webhooks/mlflow"


def signed_headers(secret: str, body: bytes, delivery_id: str, timestamp: int) -> dict[str, str]:
    """Return the headers MLflow sends with a delivery."""
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": str(timestamp),
        "X-MLflow-Signature": sign_mlflow(secret, delivery_id, timestamp, body),
    }


def write_pool(path: Path, secret: str, count: int, body: bytes = MLFLOW_BODY) -> None:
    """Write `count` signed deliveries as `id<TAB>timestamp<TAB>signature` lines."""
    now = int(time.time())
    run = uuid.uuid4().hex[:8]
    with path.open("w") as out:
        for index in range(count):
            delivery_id = f"{run}-{index:08d}"
            out.write(f"{delivery_id}\t{now}\t{sign_mlflow(secret, delivery_id, now, body)}\n")


def raw_requests(secret: str, count: int, port: int, body: bytes = MLFLOW_BODY) -> list[bytes]:
    """Return `count` complete HTTP/1.1 requests (for the rate-limited loader)."""
    now = int(time.time())
    run = uuid.uuid4().hex[:8]
    requests = []
    for index in range(count):
        headers = signed_headers(secret, body, f"{run}-{index:08d}", now)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests.append(
            (
                f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
    return requests


def run_webhook(
    secret: str, run_id: str, model_name: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """Return (body, headers) of a signed run-completion webhook (Standard Webhooks)."""
    payload: dict[str, str] = {"run_id": run_id}
    if model_name is not None:
        payload["model_name"] = model_name
    body = json.dumps(payload).encode()
    message_id = f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    return body, {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secret, message_id, timestamp, body),
    }
