"""Start the embedded local stack: MLflow, Redis (found or started), receiver, worker, beat."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from regpilot.cli.common import settings
from regpilot.cli.stack import LocalStack, Secrets, free_port, wait_http


@dataclass
class RunningStack:
    """A started local stack and how to reach it."""

    stack: LocalStack
    secrets: Secrets
    mlflow_url: str
    receiver_url: str
    redis_url: str
    env: dict[str, str]


def _refuse_bad_secrets(secrets: Secrets, state_dir: Path) -> None:
    """Stop before starting anything if the parts would refuse these secrets one by one."""
    config = settings()
    local = type(config)(
        **{
            **config.model_dump(),
            "mlflow_webhook_secret": secrets.mlflow_webhook_secret,
            "run_webhook_secret": secrets.run_webhook_secret,
        }
    )
    problems = local.secret_problems()
    if problems:
        raise click.ClickException(
            "refusing to start: " + "; ".join(problems) + f" (the webhook secrets of `regpilot up` "
            f"are kept in {state_dir / 'secrets.json'}; delete it to make new ones)"
        )


def start_local(
    state_dir: Path,
    *,
    key_prefix: str,
    queue: str,
    port: int | None = None,
    with_beat: bool = True,
    policy_file: Path | None = None,
) -> RunningStack:
    """Start MLflow, Redis (found or started), the receiver, a worker and beat.

    `policy_file` replaces the configured policy (the demo adds its golden-dataset model).
    """
    stack = LocalStack(state_dir)
    try:
        secrets = Secrets.load_or_create(stack.state_dir)
        _refuse_bad_secrets(secrets, stack.state_dir)
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
            "REGPILOT_POLICY_FILE": str((policy_file or settings().policy_file).resolve()),
        }
        receiver = stack.start_part(
            "receiver", ["serve", "--host", "127.0.0.1", "--port", str(receiver_port)], env
        )
        stack.start_part("worker", ["worker", "-c", "2"], env)
        if with_beat:
            stack.start_part("beat", ["beat"], env)
        wait_http(f"{receiver_url}/healthz", timeout=60, process=receiver)
        from regpilot.cli.webhooks import install_mlflow_webhook

        install_mlflow_webhook(
            mlflow_url, f"{receiver_url}/webhooks/mlflow", secrets.mlflow_webhook_secret
        )
        return RunningStack(stack, secrets, mlflow_url, receiver_url, redis_url, env)
    except BaseException:
        stack.stop()
        raise
