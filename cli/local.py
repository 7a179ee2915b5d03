"""`regpilot up` and `regpilot demo`: the whole flow on embedded defaults."""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import click

from cli.common import friendly_errors, settings
from cli.stack import LocalStack, Secrets, free_port, wait_http


@dataclass
class RunningStack:
    """A started local stack and how to reach it."""

    stack: LocalStack
    secrets: Secrets
    mlflow_url: str
    receiver_url: str
    redis_url: str
    env: dict[str, str]


def start_local(
    state_dir: Path, *, key_prefix: str, queue: str, port: int | None = None, with_beat: bool = True
) -> RunningStack:
    """Start MLflow, Redis (found or started), the receiver, a worker and beat."""
    stack = LocalStack(state_dir)
    try:
        secrets = Secrets.load_or_create(stack.state_dir)
        click.echo("starting MLflow server (sqlite, one worker)...", err=True)
        mlflow_url = stack.start_mlflow(secrets)
        redis_url = stack.start_redis()
        receiver_port = port or free_port()
        receiver_url = f"http://127.0.0.1:{receiver_port}"
        env = {
            "MLFLOW_TRACKING_URI": mlflow_url,
            "REGPILOT_REDIS_URL": redis_url,
            "REGPILOT_MLFLOW_WEBHOOK_SECRET": secrets.mlflow_webhook_secret,
            "REGPILOT_RUN_WEBHOOK_SECRET": secrets.run_webhook_secret,
            "REGPILOT_KEY_PREFIX": key_prefix,
            "REGPILOT_TASK_QUEUE": queue,
            "REGPILOT_STATE_DIR": str(stack.state_dir),
            "REGPILOT_POLICY_FILE": str(settings().policy_file.resolve()),
        }
        receiver = stack.start_part(
            "receiver", ["serve", "--host", "127.0.0.1", "--port", str(receiver_port)], env
        )
        stack.start_part("worker", ["worker", "-c", "2"], env)
        if with_beat:
            stack.start_part("beat", ["beat"], env)
        wait_http(f"{receiver_url}/healthz", timeout=60, process=receiver)
        from cli.webhooks import install_mlflow_webhook

        install_mlflow_webhook(
            mlflow_url, f"{receiver_url}/webhooks/mlflow", secrets.mlflow_webhook_secret
        )
        return RunningStack(stack, secrets, mlflow_url, receiver_url, redis_url, env)
    except BaseException:
        stack.stop()
        raise


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
    from cli import demo_flow

    config = settings()
    state = config.state_dir / "demo"
    shutil.rmtree(state, ignore_errors=True)
    prefix = f"regpilot-demo-{uuid.uuid4().hex[:8]}:"
    running = start_local(state, key_prefix=prefix, queue=prefix.rstrip(":"))
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
