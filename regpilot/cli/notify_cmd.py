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
@click.option("--json", "as_json", is_flag=True, help="Print the receiver's answer as JSON.")
@friendly_errors
def notify_run_cmd(run_id: str, model_name: str | None, url: str, as_json: bool) -> None:
    """Tell regpilot that RUN_ID finished (signed with REGPILOT_RUN_WEBHOOK_SECRET)."""
    from regpilot.client import notify_run

    secrets = settings().run_webhook_secrets
    if not secrets:
        raise click.ClickException("set REGPILOT_RUN_WEBHOOK_SECRET (the whsec_ secret)")
    answer = notify_run(run_id, model_name, url=url, secret=secrets[0])
    if as_json:
        emit_json(answer)
        return
    model = f" for {model_name}" if model_name else ""
    status = answer.get("status", "accepted") if isinstance(answer, dict) else "accepted"
    delivery = answer.get("delivery_id") if isinstance(answer, dict) else None
    click.echo(
        f"run {run_id}{model}: {status}"
        + (f" (delivery {delivery})" if delivery else "")
        + f"; follow it with `regpilot explain --run-id {run_id}`"
    )
