"""`regpilot up` and `regpilot demo`: the whole flow on embedded defaults."""

from __future__ import annotations

import shutil
import time
import uuid

import click

from regpilot.cli import demo_flow
from regpilot.cli.common import friendly_errors, settings
from regpilot.cli.local_stack import start_local


@click.command()
@click.option("--port", default=8080, show_default=True, type=int, help="Receiver port.")
@friendly_errors
def up(port: int) -> None:
    """Run the local stack in the foreground until Ctrl-C."""
    config = settings()
    running = start_local(
        config.state_dir / "local", key_prefix="regpilot-local:", queue="regpilot-local", port=port
    )
    click.echo(f"receiver      {running.receiver_url}  (POST /webhooks/runs, /webhooks/mlflow)")
    click.echo(f"MLflow UI     {running.mlflow_url}")
    click.echo(f"Redis         {running.redis_url}  ({running.stack.redis_note})")
    click.echo(f"run webhook secret     {running.secrets.run_webhook_secret}")
    click.echo(f"MLflow webhook secret  {running.secrets.mlflow_webhook_secret}")
    click.echo(f"logs          {running.stack.log_dir}")
    click.echo("Ctrl-C to stop.")
    try:
        while True:
            dead = running.stack.check_alive()
            if dead:
                raise click.ClickException(
                    f"{', '.join(dead)} exited; see logs in {running.stack.log_dir}"
                )
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("stopping...", err=True)
    finally:
        running.stack.stop()


@click.command()
@click.option("--keep-state", is_flag=True, help="Keep the demo's MLflow database afterwards.")
@click.option(
    "--timeout", default=180, show_default=True, type=int, help="Seconds to wait for the outcome."
)
@friendly_errors
def demo(keep_state: bool, timeout: int) -> None:
    """Train a passing and a failing model, notify regpilot, and print the outcome table."""
    config = settings()
    state = config.state_dir / "demo"
    shutil.rmtree(state, ignore_errors=True)
    prefix = f"regpilot-demo-{uuid.uuid4().hex[:8]}:"
    state.mkdir(parents=True, exist_ok=True)
    policy = demo_flow.write_demo_policy(state, config.policy_file)
    running = start_local(state, key_prefix=prefix, queue=prefix.rstrip(":"), policy_file=policy)
    try:
        click.echo(
            f"MLflow {running.mlflow_url} | receiver {running.receiver_url} | "
            f"Redis: {running.stack.redis_note}",
            err=True,
        )
        ok = demo_flow.run(running, timeout=timeout)
    finally:
        running.stack.stop()
        demo_flow.forget_keys(running.redis_url, prefix)
        if not keep_state:
            shutil.rmtree(state, ignore_errors=True)
    if not ok:
        raise click.ClickException("the outcome is not what the policy says (see the table)")
    click.echo("demo: outcome matches the policy")
