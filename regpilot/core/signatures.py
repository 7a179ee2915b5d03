"""Verify and sign webhook deliveries: pure functions of (secrets, headers, body, now)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

Secrets = Sequence[str]
Headers = Mapping[str, str]

STANDARD_PREFIX = "whsec_"


class SignatureError(Exception):
    """A delivery whose signature or timestamp does not verify; `reason` is safe to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # The exact spelling first: one look-up (case-insensitive already in Werkzeug's headers),
    # where scanning every header costs more than verifying the HMAC.
    exact = headers.get(name)
    if exact is not None:
        return exact
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _required_headers(
    headers: Mapping[str, str], names: tuple[str, str, str], now: float, tolerance: int
) -> tuple[str, str, int]:
    """Return the (id, signature, timestamp) a signed delivery must carry, or raise SignatureError.

    `names` are the three header names in that order; the timestamp must be within `tolerance`.
    """
    id_name, signature_name, timestamp_name = names
    delivery_id = _header(headers, id_name)
    if not delivery_id:
        raise SignatureError(f"missing {id_name} header")
    signature = _header(headers, signature_name)
    if not signature:
        raise SignatureError(f"missing {signature_name} header")
    timestamp = _check_timestamp(_header(headers, timestamp_name), now, tolerance)
    return delivery_id, signature, timestamp


def _check_timestamp(raw: str | None, now: float, tolerance: int) -> int:
    if raw is None or not raw.strip():
        raise SignatureError("missing timestamp header")
    try:
        timestamp = int(raw.strip())
    except ValueError as exc:
        raise SignatureError("timestamp header is not an integer") from exc
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerated window")
    return timestamp


def _hmac_b64(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


def _matched(delivery_id: str, expected: Sequence[str], offered: Sequence[str]) -> str:
    """Return the delivery id if an offered signature is an expected one; else raise."""
    if not _matches_any(expected, offered):
        raise SignatureError("signature does not match")
    return delivery_id


def _matches_any(expected: Sequence[str], offered: Sequence[str]) -> bool:
    # Compare every pair in constant time; never short-circuit on the first byte.
    found = False
    for want in expected:
        for got in offered:
            found |= hmac.compare_digest(want.encode("ascii"), got.encode("ascii", "replace"))
    return found


# --- MLflow (X-MLflow-*): key is the raw secret as UTF-8, one "v1,<b64>" signature -------------

MLFLOW_DELIVERY_ID = "X-MLflow-Delivery-Id"
MLFLOW_TIMESTAMP = "X-MLflow-Timestamp"
MLFLOW_SIGNATURE = "X-MLflow-Signature"


def sign_mlflow(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """Return the X-MLflow-Signature value MLflow would send for this delivery."""
    message = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + _hmac_b64(secret.encode("utf-8"), message)


def verify_mlflow(
    secrets: Secrets, headers: Headers, body: bytes, *, now: float, tolerance: int = 300
) -> str:
    """Verify an MLflow registry delivery and return its delivery id, or raise SignatureError."""
    names = (MLFLOW_DELIVERY_ID, MLFLOW_SIGNATURE, MLFLOW_TIMESTAMP)
    delivery_id, signature, timestamp = _required_headers(headers, names, now, tolerance)
    if not signature.startswith("v1,"):
        raise SignatureError("unsupported signature version")
    expected = [sign_mlflow(secret, delivery_id, timestamp, body)[3:] for secret in secrets]
    return _matched(delivery_id, expected, [signature[3:]])


# --- Standard Webhooks (webhook-*): key is base64 after "whsec_", space-separated signatures -----

STANDARD_ID = "webhook-id"
STANDARD_TIMESTAMP = "webhook-timestamp"
STANDARD_SIGNATURE = "webhook-signature"


def decode_standard_secret(secret: str) -> bytes:
    """Return the HMAC key of a `whsec_<base64>` secret; raise ValueError if it is not one.

    Strict: a character outside the base64 alphabet is an error, never silently skipped (a
    skipped character gives a different key than the sender's, so nothing would verify).
    """
    encoded = secret[len(STANDARD_PREFIX) :] if secret.startswith(STANDARD_PREFIX) else secret
    encoded = encoded.rstrip("=")
    if not encoded:
        raise ValueError("nothing after the whsec_ prefix")
    if len(encoded) % 4 == 1:
        raise ValueError("not base64 after the whsec_ prefix (wrong length)")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64 after the whsec_ prefix") from exc
    if not key:
        raise ValueError("decodes to an empty key")
    return key


def sign_standard(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Return a `webhook-signature` value (Standard Webhooks v1) for this message."""
    message = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + _hmac_b64(decode_standard_secret(secret), message)


def verify_standard(
    secrets: Secrets, headers: Headers, body: bytes, *, now: float, tolerance: int = 300
) -> str:
    """Verify a Standard Webhooks delivery and return its message id, or raise SignatureError."""
    names = (STANDARD_ID, STANDARD_SIGNATURE, STANDARD_TIMESTAMP)
    message_id, signature_header, timestamp = _required_headers(headers, names, now, tolerance)
    offered = [
        part[3:] for part in signature_header.split(" ") if part.startswith("v1,") and len(part) > 3
    ]
    if not offered:
        raise SignatureError("no v1 signature in webhook-signature")
    expected = [sign_standard(secret, message_id, timestamp, body)[3:] for secret in secrets]
    return _matched(message_id, expected, offered)


# --- Databricks workspace registry: lowercase hex HMAC-SHA256 of the raw body, no timestamp ------

DATABRICKS_SIGNATURE = "X-Databricks-Signature"


def sign_databricks(secret: str, body: bytes) -> str:
    """Return the X-Databricks-Signature value for a registry webhook body."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_databricks(secrets: Sequence[str], headers: Mapping[str, str], body: bytes) -> None:
    """Verify a Databricks registry webhook body, or raise SignatureError."""
    signature = _header(headers, DATABRICKS_SIGNATURE)
    if not signature:
        raise SignatureError("missing X-Databricks-Signature header")
    expected = [sign_databricks(secret, body) for secret in secrets]
    if not _matches_any(expected, [signature.strip().lower()]):
        raise SignatureError("signature does not match")
