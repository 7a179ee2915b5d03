"""`regpilot webhooks install|list`: point an MLflow server's registry webhooks at regpilot."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

import click

from cli.common import emit_json, friendly_errors, settings

WEBHOOK_NAME = "regpilot"
DEFAULT_EVENTS = ("model_version.created",)


def url_warnings(url: str) -> list[str]:
    """Return why a default MLflow server would refuse this receiver URL."""
    parsed = urlparse(url)
    warnings = []
    if parsed.scheme == "http":
        warnings.append(
            "the URL is http: the MLflow server needs MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https "
            "(its default allows https only)"
        )
    host = parsed.hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        addresses = set()
    private = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_global)
    if private:
        warnings.append(
            f"{host} resolves to a non-public address ({', '.join(private)}): the MLflow server "
            "needs MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true"
        )
    return warnings


def install_mlflow_webhook(
    tracking_uri: str, url: str, secret: str, events: tuple[str, ...] = DEFAULT_EVENTS
) -> tuple[str, str]:
    """Create or update regpilot's webhook on the MLflow server; return (id, created|updated)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    existing = [w for w in client.list_webhooks(max_results=1000) if w.name == WEBHOOK_NAME]
    if existing:
        hook = client.update_webhook(
            existing[0].webhook_id, url=url, events=list(events), secret=secret, status="ACTIVE"
        )
        return hook.webhook_id, "updated"
    hook = client.create_webhook(
        WEBHOOK_NAME,
        url,
        list(events),
        secret=secret,
        description="regpilot: validate, register, alias, retain",
    )
    return hook.webhook_id, "created"


@click.group()
def webhooks() -> None:
    """Manage the registry webhooks that feed regpilot."""


@webhooks.command("install")
@click.option("--url", required=True, help="Public URL of POST /webhooks/mlflow.")
@click.option(
    "--event",
    "events",
    multiple=True,
    default=DEFAULT_EVENTS,
    show_default=True,
    help="entity.action to subscribe to (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def install(url: str, events: tuple[str, ...], as_json: bool) -> None:
    """Create (or update) the MLflow webhook, signed with REGPILOT_MLFLOW_WEBHOOK_SECRET."""
    from mlflow.exceptions import MlflowException

    config = settings()
    if not config.mlflow_webhook_secrets:
        raise click.ClickException(
            "set REGPILOT_MLFLOW_WEBHOOK_SECRET first: the webhook is signed"
        )
    for warning in url_warnings(url):
        click.echo(f"warning: {warning}", err=True)
    try:
        hook_id, what = install_mlflow_webhook(
            config.mlflow_tracking_uri, url, config.mlflow_webhook_secrets[0], events
        )
    except MlflowException as exc:
        raise click.ClickException(f"MLflow refused the webhook: {exc.message}") from exc
    if as_json:
        emit_json({"id": hook_id, "result": what, "url": url, "events": list(events)})
    else:
        click.echo(f"{what} MLflow webhook {hook_id} -> {url} ({', '.join(events)})")


@webhooks.command("list")
@friendly_errors
def list_hooks() -> None:
    """List the MLflow server's webhooks."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings().mlflow_tracking_uri)
    for hook in client.list_webhooks(max_results=1000):
        events = ",".join(f"{e.entity}.{e.action}" for e in hook.events)
        click.echo(f"{hook.webhook_id}  {hook.name}  {hook.status}  {hook.url}  {events}")
