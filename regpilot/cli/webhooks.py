"""`regpilot webhooks install|list`: point an MLflow server's registry webhooks at regpilot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import urlparse

import click
from click.core import ParameterSource

from regpilot.cli.common import (
    choice_option,
    emit_json,
    friendly_errors,
    private_addresses,
    settings,
)
from regpilot.registry.paging import iter_pages

WEBHOOK_NAME = "regpilot"
DEFAULT_EVENTS = ("model_version.created",)


def url_warnings(
    url: str, allowed_schemes: str | None = None, allow_private_ips: bool | None = None
) -> list[str]:
    """Return why the MLflow server would refuse this receiver URL.

    Without the server's own settings (`allowed_schemes`, `allow_private_ips`) its defaults
    are assumed: https only, public addresses only.
    """
    parsed = urlparse(url)
    warnings = []
    schemes = {s.strip() for s in (allowed_schemes or "https").split(",")}
    if parsed.scheme == "http" and "http" not in schemes:
        warnings.append(
            "the URL is http: the MLflow server needs MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https "
            "(its default allows https only)"
        )
    host = parsed.hostname or ""
    private = private_addresses(host)
    if private and not allow_private_ips:
        warnings.append(
            f"{host} resolves to a non-public address ({', '.join(private)}): the MLflow server "
            "needs MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true"
        )
    return warnings


def install_mlflow_webhook(
    tracking_uri: str,
    url: str,
    secret: str,
    events: tuple[str, ...] = DEFAULT_EVENTS,
    name: str = WEBHOOK_NAME,
) -> tuple[str, str]:
    """Create or update regpilot's webhook on the MLflow server; return (id, created|updated).

    The webhook is found by `name`, so installing twice updates it, and two regpilot
    deployments on one MLflow server can each keep their own.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    # MLflow types events as a Literal of its event names; ours come from the CLI as strings.
    subscribed: list[Any] = list(events)
    existing = [w for w in mlflow_webhooks(client) if w.name == name]
    if existing:
        hook = client.update_webhook(
            existing[0].webhook_id, url=url, events=subscribed, secret=secret, status="ACTIVE"
        )
        return hook.webhook_id, "updated"
    hook = client.create_webhook(
        name,
        url,
        subscribed,
        secret=secret,
        description="regpilot: validate, register, alias, retain",
    )
    return hook.webhook_id, "created"


target_option = choice_option(
    "--target",
    ["mlflow", "databricks"],
    "The MLflow server, or the Databricks workspace model registry.",
)
name_option = click.option(
    "--name",
    "hook_name",
    default=WEBHOOK_NAME,
    show_default=True,
    help="MLflow: the webhook's name (install updates the webhook of that name).",
)


def mlflow_webhooks(client: Any) -> Iterator[Any]:
    """Yield every webhook on the MLflow server, page by page."""
    return iter_pages(lambda token: _page(client.list_webhooks(max_results=1000, page_token=token)))


def _page(webhooks: Any) -> tuple[list[Any], str | None]:
    return list(webhooks), webhooks.token or None


@click.group()
def webhooks() -> None:
    """Manage the registry webhooks that feed regpilot."""


@webhooks.command("install")
@click.option(
    "--url",
    required=True,
    help="Public URL of POST /webhooks/mlflow (or /webhooks/databricks/registry).",
)
@click.option(
    "--event",
    "events",
    multiple=True,
    default=DEFAULT_EVENTS,
    show_default=True,
    help="entity.action to subscribe to (repeatable); Databricks event names with "
    "--target databricks (default MODEL_VERSION_CREATED, TRANSITION_REQUEST_CREATED).",
)
@target_option
@click.option(
    "--model-name", default=None, help="Databricks: one model's webhook (default: registry-wide)."
)
@name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@friendly_errors
def install(
    click_ctx: click.Context,
    url: str,
    events: tuple[str, ...],
    target: str,
    model_name: str | None,
    hook_name: str,
    as_json: bool,
) -> None:
    """Create (or update) the webhook, signed with REGPILOT_MLFLOW_WEBHOOK_SECRET.

    With --target databricks: the workspace registry's webhook, signed with
    REGPILOT_DATABRICKS_WEBHOOK_SECRET, created through the Databricks SDK.
    """
    from mlflow.exceptions import MlflowException

    if target == "databricks":
        from regpilot.cli import databricks_webhooks

        given = click_ctx.get_parameter_source("events") is not ParameterSource.DEFAULT
        databricks_webhooks.install(url, model_name, events if given else (), as_json)
        return
    if model_name is not None:
        raise click.ClickException("--model-name applies to --target databricks only")
    config = settings()
    if not config.mlflow_webhook_secrets:
        raise click.ClickException(
            "set REGPILOT_MLFLOW_WEBHOOK_SECRET first: the webhook is signed"
        )
    for warning in url_warnings(
        url, config.mlflow_webhook_allowed_schemes, config.mlflow_webhook_allow_private_ips
    ):
        click.echo(f"warning: {warning}", err=True)
    try:
        hook_id, what = install_mlflow_webhook(
            config.mlflow_tracking_uri, url, config.mlflow_webhook_secrets[0], events, hook_name
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
    for hook in mlflow_webhooks(client):
        events = ",".join(f"{e.entity}.{e.action}" for e in hook.events)
        click.echo(f"{hook.webhook_id}  {hook.name}  {hook.status}  {hook.url}  {events}")


@webhooks.command("test")
@target_option
@click.option("--id", "webhook_id", default=None, help="Webhook id (default: regpilot's own).")
@click.option("--event", default=None, help="Event to send (default: one the webhook has).")
@name_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def test_hook(
    target: str, webhook_id: str | None, event: str | None, hook_name: str, as_json: bool
) -> None:
    """Make the registry send its test event to regpilot; fail unless regpilot accepted it."""
    if target == "databricks":
        from regpilot.cli import databricks_webhooks

        databricks_webhooks.test(webhook_id, event, as_json)
        return
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings().mlflow_tracking_uri)
    if webhook_id is None:
        ours = [w.webhook_id for w in mlflow_webhooks(client) if w.name == hook_name]
        if not ours:
            raise click.ClickException(
                f"no webhook named {hook_name!r} on the MLflow server: give --id or --name"
            )
        webhook_id = ours[0]
    result = client.test_webhook(webhook_id, cast(Any, event))
    status = result.response_status
    if as_json:
        emit_json({"id": webhook_id, "status_code": status, "body": result.response_body})
    else:
        click.echo(f"webhook {webhook_id}: receiver answered {status}: {result.response_body}")
    if not result.success:
        raise click.ClickException(
            f"the test delivery was not accepted ({status}): {result.error_message or ''}".strip()
        )
