"""Start the embedded local stack: MLflow, Redis (found or started), receiver, worker, beat."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import click

from regpilot.cli.common import settings
from regpilot.cli.stack import LocalStack, PartFailed, Secrets, free_port, wait_http

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
MLFLOW_PORT_FILE = "mlflow-port"


@dataclass
class LocalChoices:
    """What the local stack uses instead of what it would start or generate."""

    key_prefix: str
    queue: str
    # Where the parts run: None starts (or picks) one.
    port: int | None = None
    mlflow_port: int | None = None
    tracking_uri: str | None = None
    redis_url: str | None = None
    with_beat: bool = True
    # What they share: None generates a secret, or reads the default policy.
    run_webhook_secret: str | None = None
    mlflow_webhook_secret: str | None = None
    ops_token: str | None = None
    policy_file: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


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
            "ops_token": secrets.ops_token,
        }
    )
    problems = local.secret_problems()
    if problems:
        raise click.ClickException(
            "refusing to start: " + "; ".join(problems) + f" (the webhook secrets of `regpilot up` "
            f"are kept in {state_dir / 'secrets.json'}; delete it to make new ones)"
        )


def is_loopback(url: str) -> bool:
    """Tell whether an http(s) URL points at this machine."""
    parsed = urlparse(url)
    return parsed.scheme in {"http", "https"} and (parsed.hostname or "") in LOOPBACK_HOSTS


def remembered_mlflow_port(state_dir: Path) -> int | None:
    """Return the MLflow port the last `regpilot up` used in this state folder, if any."""
    try:
        return int((state_dir / MLFLOW_PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def remember_mlflow_port(state_dir: Path, port: int) -> None:
    """Keep the MLflow port, so the next start serves the same URL."""
    (state_dir / MLFLOW_PORT_FILE).write_text(f"{port}\n")


def start_local(
    state_dir: Path,
    *,
    key_prefix: str,
    queue: str,
    port: int | None = None,
    with_beat: bool = True,
    choices: LocalChoices | None = None,
    policy_file: Path | None = None,
) -> RunningStack:
    """Start MLflow, Redis (found or started), the receiver, a worker and beat.

    `choices` (from `regpilot up`) says which MLflow, Redis, secrets and ports to use; without
    it everything is started or generated (what `regpilot demo` wants). `policy_file` replaces
    the configured policy (the demo adds its golden-dataset model).
    """
    choices = choices or LocalChoices(
        key_prefix=key_prefix, queue=queue, port=port, policy_file=policy_file
    )
    choices.with_beat = choices.with_beat and with_beat
    stack = LocalStack(state_dir)
    try:
        return _start(stack, choices)
    except BaseException:
        stack.stop()
        raise


def _start(stack: LocalStack, choices: LocalChoices) -> RunningStack:
    generated = Secrets.load_or_create(stack.state_dir)
    secrets = Secrets(
        mlflow_webhook_secret=choices.mlflow_webhook_secret or generated.mlflow_webhook_secret,
        run_webhook_secret=choices.run_webhook_secret or generated.run_webhook_secret,
        fernet_key=generated.fernet_key,
        ops_token=choices.ops_token or generated.ops_token,
    )
    _refuse_bad_secrets(secrets, stack.state_dir)
    if choices.tracking_uri is not None:
        mlflow_url = choices.tracking_uri
        click.echo(f"using the MLflow server at {mlflow_url}", err=True)
    else:
        mlflow_port = choices.mlflow_port or free_port()
        click.echo(f"starting MLflow server on port {mlflow_port} (sqlite)...", err=True)
        mlflow_url = stack.start_mlflow(generated, mlflow_port)
        remember_mlflow_port(stack.state_dir, mlflow_port)
    if choices.redis_url is not None:
        redis_url = choices.redis_url
        stack.redis_note = "REGPILOT_REDIS_URL"
    else:
        redis_url = stack.start_redis()
    receiver_port = choices.port or free_port()
    receiver_url = f"http://127.0.0.1:{receiver_port}"
    policy_file = choices.policy_file or settings().policy_file
    env = {
        **choices.extra_env,
        "MLFLOW_TRACKING_URI": mlflow_url,
        "REGPILOT_REDIS_URL": redis_url,
        "REGPILOT_MLFLOW_WEBHOOK_SECRET": secrets.mlflow_webhook_secret,
        "REGPILOT_RUN_WEBHOOK_SECRET": secrets.run_webhook_secret,
        "REGPILOT_OPS_TOKEN": secrets.ops_token,
        "REGPILOT_KEY_PREFIX": choices.key_prefix,
        "REGPILOT_TASK_QUEUE": choices.queue,
        "REGPILOT_STATE_DIR": str(stack.state_dir),
        "REGPILOT_POLICY_FILE": str(Path(policy_file).resolve()),
        "PYTHONUNBUFFERED": "1",
    }
    receiver = stack.start_part(
        "receiver", ["serve", "--host", "127.0.0.1", "--port", str(receiver_port)], env
    )
    stack.start_part("worker", ["worker", "-c", "2"], env)
    if choices.with_beat:
        stack.start_part("beat", ["beat"], env)
    stack.wait_ready("receiver", f"{receiver_url}/healthz", timeout=60, process=receiver)
    # A worker or beat that cannot start (a bad setting) exits within seconds.
    stack.wait_alive("worker", 3)
    if choices.with_beat:
        stack.wait_alive("beat", 0)
    if is_loopback(mlflow_url):
        from regpilot.cli.webhooks import install_mlflow_webhook

        first_secret = secrets.mlflow_webhook_secret.split(",")[0].strip()
        install_mlflow_webhook(mlflow_url, f"{receiver_url}/webhooks/mlflow", first_secret)
    return RunningStack(stack, secrets, mlflow_url, receiver_url, redis_url, env)


__all__ = ["LocalChoices", "PartFailed", "RunningStack", "start_local", "wait_http"]
