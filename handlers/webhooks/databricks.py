"""Databricks webhooks: job notifications (`/jobs`) and workspace registry events (`/registry`).

Registered only when REGPILOT_DATABRICKS_ENABLED is true. Job notifications carry no signature,
so the caller is authenticated (HTTP Basic or a bearer token set on the notification
destination) and the payload is only a hint the worker checks with the Jobs API. Registry events
are signed (X-Databricks-Signature, hex HMAC-SHA256 of the body) but not timestamped, so both
endpoints dedupe on the body's SHA-256: a replayed body is a duplicate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from typing import Any, NoReturn

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from config.settings import Settings
from handlers.errors import Reject
from handlers.services import services
from handlers.webhooks.intake import enqueue, ignored, parse_payload, read_body
from regpilot.core.databricks import (
    JOB_SUCCESS,
    RegistryAction,
    auth_problem,
    parse_job_notification,
    parse_registry_event,
    registry_action,
    requested_stage,
)
from regpilot.core.signatures import SignatureError, verify_databricks
from regpilot.queue import names

log = logging.getLogger("regpilot.webhook")
blueprint = Blueprint("databricks", __name__)

JOBS_SOURCE = "databricks-jobs"
REGISTRY_SOURCE = "databricks-registry"


def configuration_problems(settings: Settings) -> list[str]:
    """Return why the Databricks endpoints must not start with these settings."""
    problems = []
    problem = auth_problem(settings.databricks_host, **settings.databricks_credentials_given)
    if problem:
        problems.append(problem)
    user, password = settings.databricks_jobs_username, settings.databricks_jobs_password
    if bool(user) != (password is not None):
        problems.append(
            "set REGPILOT_DATABRICKS_JOBS_USERNAME and REGPILOT_DATABRICKS_JOBS_PASSWORD together"
        )
    callers = settings.databricks_webhook_secrets or settings.databricks_jobs_tokens or user
    if not callers and not settings.insecure_no_signature:
        problems.append(
            "Databricks is enabled but would authenticate no caller: set "
            "REGPILOT_DATABRICKS_WEBHOOK_SECRET (registry webhooks) and/or "
            "REGPILOT_DATABRICKS_JOBS_USERNAME + REGPILOT_DATABRICKS_JOBS_PASSWORD or "
            "REGPILOT_DATABRICKS_JOBS_TOKEN (job notifications)"
        )
    return problems


def body_identity(body: bytes) -> str:
    """Return the delivery id of an untimestamped body: its SHA-256, so replays are duplicates."""
    return "sha256-" + hashlib.sha256(body).hexdigest()


# --- job notifications ------------------------------------------------------------------------


@blueprint.post("/webhooks/databricks/jobs")
def job_notification() -> ResponseReturnValue:
    """Authenticate the caller, parse the notification, and queue a check of a succeeded run."""
    ctx = services()
    _authenticate_job_caller(ctx.settings)
    body = read_body(request, ctx.settings.max_body_bytes)
    note = parse_payload(request, body, parse_job_notification, "Databricks job notification")
    delivery_id = body_identity(body)
    summary: dict[str, Any] = {"event": note.event_type, "run_id": str(note.run.run_id)}
    if note.run.parent_run_id is not None:
        summary["parent_run_id"] = str(note.run.parent_run_id)
    if note.job is not None and note.job.job_id is not None:
        summary["job_id"] = str(note.job.job_id)
    if note.task is not None and note.task.task_key:
        summary["task_key"] = note.task.task_key
    if note.event_type != JOB_SUCCESS:
        reason = f"event {note.event_type} is recorded, not acted on"
        return ignored(JOBS_SOURCE, delivery_id, reason, summary)
    args = [note.run.run_id, note.run.parent_run_id]
    return enqueue(JOBS_SOURCE, delivery_id, names.DATABRICKS_JOB_COMPLETED, args, summary)


def _authenticate_job_caller(settings: Settings) -> None:
    user, password = settings.databricks_jobs_username, settings.databricks_jobs_password
    tokens = settings.databricks_jobs_tokens
    basic = bool(user) and password is not None
    if not basic and not tokens:
        if settings.insecure_no_signature:
            return
        raise Reject(401, "no credentials configured for this endpoint")
    header = request.headers.get("Authorization", "").strip()
    if not header:
        _refuse("missing Authorization header")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic" and basic:
        assert user is not None and password is not None
        if _basic_matches(value.strip(), user, password.get_secret_value()):
            return
        _refuse("credentials do not match")
    if scheme == "bearer" and tokens:
        offered = value.strip().encode("utf-8", "replace")
        found = False
        for token in tokens:  # compare against every token: no early exit on the first match
            found |= hmac.compare_digest(token.encode("utf-8"), offered)
        if found:
            return
        _refuse("credentials do not match")
    _refuse(f"authorization scheme {scheme or '(none)'!r} is not accepted here")


def _basic_matches(encoded: str, user: str, password: str) -> bool:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        _refuse("malformed Basic credentials")
    offered_user, sep, offered_password = decoded.partition(":")
    if not sep:
        _refuse("malformed Basic credentials")
    user_ok = hmac.compare_digest(offered_user.encode(), user.encode())
    password_ok = hmac.compare_digest(offered_password.encode(), password.encode())
    return user_ok and password_ok


def _refuse(reason: str) -> NoReturn:
    log.warning("webhook.auth_failed", extra={"source": JOBS_SOURCE, "reason": reason})
    raise Reject(401, reason)


# --- workspace model registry webhooks --------------------------------------------------------


@blueprint.post("/webhooks/databricks/registry")
def registry_event() -> ResponseReturnValue:
    """Verify the signature, parse the event, and queue validation or a request review."""
    ctx = services()
    body = read_body(request, ctx.settings.max_body_bytes)
    _verify_registry(ctx.settings, body)
    event = parse_payload(request, body, parse_registry_event, "Databricks registry event")
    delivery_id = body_identity(body)
    summary: dict[str, Any] = {"event": event.event}
    if event.model_name:
        summary["model"] = event.model_name
    if event.version is not None:
        summary["version"] = event.version
    if event.webhook_id:
        summary["webhook_id"] = event.webhook_id
    action, reason = registry_action(event)
    if action is RegistryAction.IGNORE:
        return ignored(REGISTRY_SOURCE, delivery_id, reason, summary)
    if action is RegistryAction.VALIDATE_VERSION:
        args: list[Any] = [event.model_name, event.version]
        return enqueue(REGISTRY_SOURCE, delivery_id, names.MODEL_VERSION_CREATED, args, summary)
    stage = requested_stage(event)
    if stage:
        summary["stage"] = stage
    args = [event.model_name, event.version, stage]
    return enqueue(REGISTRY_SOURCE, delivery_id, names.DATABRICKS_TRANSITION_REQUEST, args, summary)


def _verify_registry(settings: Settings, body: bytes) -> None:
    secrets = settings.databricks_webhook_secrets
    if not secrets:
        if settings.insecure_no_signature:
            return
        raise Reject(401, "no secret configured for this endpoint")
    try:
        verify_databricks(secrets, dict(request.headers), body)
    except SignatureError as exc:
        log.warning(
            "webhook.signature_invalid", extra={"source": REGISTRY_SOURCE, "reason": exc.reason}
        )
        raise Reject(401, exc.reason) from exc
