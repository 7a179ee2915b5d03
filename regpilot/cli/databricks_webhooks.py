"""`regpilot webhooks install|test --target databricks`: the workspace registry's webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlparse

import click

from regpilot.cli.common import emit_json, private_addresses, settings

DEFAULT_EVENTS = ("MODEL_VERSION_CREATED", "TRANSITION_REQUEST_CREATED")
REGISTRY_WIDE_ONLY = "REGISTERED_MODEL_CREATED"


def url_warnings(url: str) -> list[str]:
    """Return why Databricks could not deliver to this receiver URL."""
    parsed = urlparse(url)
    warnings = []
    if parsed.scheme != "https":
        warnings.append("Databricks delivers to https URLs with a certificate from a trusted CA")
    host = parsed.hostname or ""
    private = private_addresses(host)
    if private:
        warnings.append(
            f"{host} resolves to a non-public address ({', '.join(private)}): registry webhooks "
            "do not support private endpoints"
        )
    return warnings


def check_events(events: Sequence[str], model_name: str | None) -> list[str]:
    """Return the events to subscribe to, or raise a ClickException naming the bad one."""
    from regpilot.core.databricks import REGISTRY_EVENTS

    chosen = list(events) or list(DEFAULT_EVENTS)
    for event in chosen:
        if event not in REGISTRY_EVENTS:
            raise click.ClickException(
                f"unknown Databricks registry event {event!r}; one of: "
                + ", ".join(sorted(REGISTRY_EVENTS))
            )
    if model_name and REGISTRY_WIDE_ONLY in chosen:
        raise click.ClickException(
            f"{REGISTRY_WIDE_ONLY} is only allowed on a registry-wide webhook (no --model-name)"
        )
    return chosen


def install(url: str, model_name: str | None, events: Sequence[str], as_json: bool) -> None:
    """Create or update the HTTP registry webhook, signed with the Databricks webhook secret."""
    from regpilot.registry.databricks import DatabricksWorkspace

    config = settings()
    if not config.databricks_webhook_secrets:
        raise click.ClickException(
            "set REGPILOT_DATABRICKS_WEBHOOK_SECRET first: the webhook is signed with it"
        )
    chosen = check_events(events, model_name)
    for warning in url_warnings(url):
        click.echo(f"warning: {warning}", err=True)
    workspace = DatabricksWorkspace.from_settings(config)
    hook_id, what = workspace.install_registry_webhook(
        url, config.databricks_webhook_secrets[0], chosen, model_name=model_name
    )
    scope = f"model {model_name}" if model_name else "registry-wide"
    if as_json:
        emit_json(
            {"id": hook_id, "result": what, "url": url, "events": chosen, "model_name": model_name}
        )
    else:
        click.echo(f"{what} Databricks registry webhook {hook_id} ({scope}) -> {url}")


def test(webhook_id: str | None, event: str | None, as_json: bool) -> None:
    """Fire the webhook's test event; fail unless regpilot answered with a 2xx status."""
    from regpilot.core.databricks import REGISTRY_EVENTS
    from regpilot.registry.databricks import DatabricksWorkspace

    if event is not None and event not in REGISTRY_EVENTS:
        raise click.ClickException(f"unknown Databricks registry event {event!r}")
    workspace = DatabricksWorkspace.from_settings(settings())
    if webhook_id is None:
        ours = [
            hook.id
            for hook in workspace.registry_webhooks()
            if hook.id and (hook.description or "").startswith("regpilot")
        ]
        if len(ours) != 1:
            raise click.ClickException(
                f"found {len(ours)} regpilot webhooks in the workspace: give --id"
            )
        webhook_id = ours[0]
    result = workspace.test_registry_webhook(webhook_id, event)
    if as_json:
        emit_json({"id": webhook_id, "status_code": result.status_code, "body": result.body})
    else:
        click.echo(f"webhook {webhook_id}: receiver answered {result.status_code}: {result.body}")
    if result.status_code is None or not 200 <= result.status_code < 300:
        raise click.ClickException(f"the test delivery was not accepted ({result.status_code})")
