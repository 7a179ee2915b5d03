"""Notifications of decisions: which decisions notify, the event they make, and its messages.

Pure functions over plain data. The worker turns a recorded decision into an event here
(`event_type_for`, `build_event`), queues one delivery per subscribed destination, and each
delivery formats the event for its destination (`slack_message`, `teams_message`, or the event
itself, signed the Standard Webhooks way) right before it posts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlparse

VALIDATION_PASSED = "validation.passed"
VALIDATION_FAILED = "validation.failed"
REGISTERED = "registered"
CHALLENGER_MOVED = "challenger.moved"
CHAMPION_PROMOTED = "champion.promoted"
CHAMPION_ROLLED_BACK = "champion.rolled_back"
RETENTION_APPLIED = "retention.applied"
DEAD_LETTER = "dead_letter"

EVENT_TYPES: tuple[str, ...] = (
    VALIDATION_PASSED,
    VALIDATION_FAILED,
    REGISTERED,
    CHALLENGER_MOVED,
    CHAMPION_PROMOTED,
    CHAMPION_ROLLED_BACK,
    RETENTION_APPLIED,
    DEAD_LETTER,
)
SCHEMA_VERSION = "1"

# The decision kinds the workflows record (workflows/*.py `ctx.record`) that map one to one.
_BY_KIND = {
    "registration": REGISTERED,
    "promotion": CHAMPION_PROMOTED,
    "rollback": CHAMPION_ROLLED_BACK,
    "retention": RETENTION_APPLIED,
    "dead_letter": DEAD_LETTER,
}
_HEADLINES = {
    VALIDATION_PASSED: "passed validation",
    VALIDATION_FAILED: "failed validation",
    REGISTERED: "registered",
    CHALLENGER_MOVED: "is the new challenger",
    CHAMPION_PROMOTED: "promoted to champion",
    CHAMPION_ROLLED_BACK: "champion rolled back",
    RETENTION_APPLIED: "retention applied",
    DEAD_LETTER: "task failed for good (dead letter)",
}
_LOOPBACK_NAMES = {"localhost"}


def event_type_for(kind: str, details: Mapping[str, Any], *, challenger_alias: str) -> str | None:
    """Return the notification event a recorded decision makes, or None for a silent one.

    A gate verdict of SKIPPED (validation skipped on request), an alias other than the model's
    challenger, a stage change or a deleted alias notify nobody.
    """
    if kind == "gate":
        verdict = details.get("verdict")
        return {"PASSED": VALIDATION_PASSED, "FAILED": VALIDATION_FAILED}.get(str(verdict))
    if kind == "alias":
        return CHALLENGER_MOVED if details.get("alias") == challenger_alias else None
    return _BY_KIND.get(kind)


def failed_checks(checks: Any) -> list[dict[str, str]]:
    """Return the failed checks of a recorded verdict as {name, expected, actual, reason}."""
    if not isinstance(checks, Sequence) or isinstance(checks, str):
        return []
    failed = []
    for check in checks:
        if isinstance(check, Mapping) and check.get("result") == "FAILED":
            failed.append(
                {key: str(check.get(key) or "") for key in ("name", "expected", "actual", "reason")}
            )
    return failed


def mlflow_links(
    ui_url: str | None,
    model: str,
    version: int | None,
    run_id: str | None,
    experiment_id: str | None,
) -> dict[str, str]:
    """Return links to the model, version and run in the MLflow UI (none without an http URL).

    The MLflow UI routes are `#/models/<name>`, `#/models/<name>/versions/<v>` and
    `#/experiments/<experiment>/runs/<run>`.
    """
    if not ui_url or urlparse(ui_url).scheme not in ("http", "https"):
        return {}
    base = ui_url.rstrip("/") + "/#"
    links: dict[str, str] = {}
    if model:
        links["model"] = f"{base}/models/{quote(model, safe='')}"
        if version is not None:
            links["version"] = f"{links['model']}/versions/{version}"
    if run_id and experiment_id:
        links["run"] = f"{base}/experiments/{quote(experiment_id, safe='')}/runs/{run_id}"
    return links


def run_page_link(ui_url: str | None, run_id: str | None) -> str | None:
    """Return the MLflow UI's direct link to a run, which needs no experiment id (`#/runs/<run>`).

    The UI looks the run up and opens it under its experiment, so a decision record that
    names only the run still links to it.
    """
    if not run_id or not ui_url or urlparse(ui_url).scheme not in ("http", "https"):
        return None
    return f"{ui_url.rstrip('/')}/#/runs/{quote(run_id, safe='')}"


def _version(value: Any) -> int | None:
    try:
        return int(value) if value is not None and str(value).strip() else None
    except (TypeError, ValueError):
        return None


def build_event(
    event_type: str, event_id: str, timestamp: str, model: str, decision: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the generic JSON event of one decision (docs/notifications.schema.json).

    `decision` is the recorded decision: its details (`version`, `run_id`, `verdict`, `checks`,
    `alias`, `previous`, `action`, `reason`, `error`, ...) and its `trigger`. Links are added
    at delivery time (`with_links`), where the run's experiment can be looked up.
    """
    trigger = decision.get("trigger")
    data: dict[str, Any] = {
        "model": model,
        "version": _version(decision.get("version")),
        "run_id": decision.get("run_id") or None,
        "verdict": decision.get("verdict") or None,
        "failed_checks": failed_checks(decision.get("checks")),
        "alias": decision.get("alias") or None,
        "previous_version": _version(decision.get("previous")),
        "action": decision.get("action") or None,
        "reason": decision.get("reason") or None,
        "error": decision.get("error") or None,
        "task": decision.get("task") or None,
        "trigger": {k: str(v) for k, v in trigger.items()} if isinstance(trigger, Mapping) else {},
        "links": {},
    }
    return {
        "id": event_id,
        "type": event_type,
        "timestamp": timestamp,
        "schema_version": SCHEMA_VERSION,
        "data": data,
    }


def with_links(event: Mapping[str, Any], links: Mapping[str, str]) -> dict[str, Any]:
    """Return the event with its MLflow UI links filled in."""
    return {**event, "data": {**event["data"], "links": dict(links)}}


def headline(event: Mapping[str, Any]) -> str:
    """Return the one-line summary of an event: model, version and what happened."""
    data = event["data"]
    subject = data["model"] or "regpilot"
    if data.get("version") is not None:
        subject += f" v{data['version']}"
    elif data.get("run_id"):
        subject += f" (run {str(data['run_id'])[:12]})"
    return f"{subject}: {_HEADLINES.get(event['type'], event['type'])}"


def detail_lines(event: Mapping[str, Any]) -> list[str]:
    """Return the facts of an event as short plain-text lines, most important first."""
    data = event["data"]
    lines = []
    if data.get("verdict"):
        lines.append(f"Verdict: {data['verdict']}")
    for check in data.get("failed_checks") or []:
        reason = f" ({check['reason']})" if check.get("reason") else ""
        lines.append(
            f"Failed check {check['name']}: expected {check['expected']}, "
            f"got {check['actual']}{reason}"
        )
    if data.get("alias"):
        was = data.get("previous_version")
        moved = f" (was v{was})" if was is not None else ""
        lines.append(f"Alias {data['alias']} -> v{data.get('version')}{moved}")
    if data.get("action"):
        lines.append(f"Retention: {data['action']} ({data.get('reason') or 'policy'})")
    if data.get("error"):
        lines.append(f"Error: {str(data['error'])[:500]}")
    if data.get("task"):
        lines.append(f"Task: {data['task']}")
    if data.get("run_id"):
        lines.append(f"Run: {data['run_id']}")
    trigger = data.get("trigger") or {}
    who = trigger.get("actor") or trigger.get("source")
    if who:
        lines.append(f"By: {who}")
    return lines


def _slack_escape(text: str) -> str:
    # Slack mrkdwn: only &, < and > must be escaped (api.slack.com/reference/surfaces/formatting).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_LINK_LABELS = (("version", "Model version"), ("model", "Model"), ("run", "Run"))


def slack_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Slack incoming-webhook message (Block Kit, with a plain `text` fallback)."""
    title = headline(event)
    lines = detail_lines(event)
    links = event["data"].get("links") or {}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
    ]
    if lines:
        body = "\n".join(_slack_escape(line) for line in lines)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:3000]}})
    link_text = " | ".join(f"<{links[key]}|{label}>" for key, label in _LINK_LABELS if key in links)
    if link_text:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link_text}]})
    return {"text": title, "blocks": blocks}


def teams_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return a Microsoft Teams webhook message: an Adaptive Card in a message envelope.

    Teams Workflows webhooks and the older incoming webhooks both accept this envelope.
    """
    links = event["data"].get("links") or {}
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": headline(event),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
    ]
    body += [{"type": "TextBlock", "text": line, "wrap": True} for line in detail_lines(event)]
    actions = [
        {"type": "Action.OpenUrl", "title": label, "url": links[key]}
        for key, label in _LINK_LABELS
        if key in links
    ]
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def destination_url_problem(url: str) -> str | None:
    """Return why a notification URL is refused, or None when it may be used.

    Destinations must be HTTPS: a decision and a signature go over the wire. Plain http is
    allowed only to this machine (localhost, 127.0.0.0/8, ::1), for tests and local play.
    """
    try:
        parsed = urlparse(url)
        host = parsed.hostname or ""
    except ValueError:
        return "is not a valid URL"
    if parsed.scheme not in ("https", "http") or not host:
        return "must be an https:// URL"
    if parsed.scheme == "http" and not _is_loopback(host):
        return "must be https (plain http is allowed only to localhost/127.0.0.1)"
    return None


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
