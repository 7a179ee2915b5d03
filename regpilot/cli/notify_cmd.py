"""`regpilot notify-run RUN_ID`: send the run-completion webhook by hand."""

from __future__ import annotations

import click

from regpilot.cli.common import emit_json, friendly_errors, settings


@click.command("notify-run")
@click.argument("run_id")
@click.option("--model-name", default=None, help="Registered model name (else resolved).")
@click.option(
    "--url",
    default="http://127.0.0.1:8080/webhooks/runs",
    show_default=True,
    help="regpilot's POST /webhooks/runs URL.",
)
@friendly_errors
def notify_run_cmd(run_id: str, model_name: str | None, url: str) -> None:
    """Tell regpilot that RUN_ID finished (signed with REGPILOT_RUN_WEBHOOK_SECRET)."""
    from regpilot.client import notify_run

    secrets = settings().run_webhook_secrets
    if not secrets:
        raise click.ClickException("set REGPILOT_RUN_WEBHOOK_SECRET (the whsec_ secret)")
    emit_json(notify_run(run_id, model_name, url=url, secret=secrets[0]))
