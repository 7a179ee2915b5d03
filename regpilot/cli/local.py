"""`regpilot up` and `regpilot demo`: the whole flow on embedded defaults."""

from __future__ import annotations

import functools
import shlex
import shutil
import signal
import time
import uuid
from typing import Any
from urllib.parse import urlparse

import click

from regpilot.cli import demo_flow
from regpilot.cli.common import friendly_errors, policy_option, settings, tracking_uri_problem
from regpilot.cli.local_stack import (
    LocalChoices,
    PartFailed,
    is_loopback,
    remembered_mlflow_port,
    start_local,
)
from regpilot.cli.stack import wait_http

EXPORTED = (
    "MLFLOW_TRACKING_URI",
    "REGPILOT_REDIS_URL",
    "REGPILOT_KEY_PREFIX",
    "REGPILOT_OPS_TOKEN",
    "REGPILOT_RUN_WEBHOOK_SECRET",
    "REGPILOT_MLFLOW_WEBHOOK_SECRET",
)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class StopRequested(BaseException):
    """SIGTERM or SIGHUP arrived: stop like Ctrl-C does."""


def _stop_on_signal(signum: int, _frame: Any) -> None:
    # Further signals are ignored while the stack stops, so a second Ctrl-C or SIGTERM cannot
    # interrupt the stop half-way and leave children running.
    for other in (*STOP_SIGNALS, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise StopRequested(signal.Signals(signum).name)


def export_lines(env: dict[str, str]) -> list[str]:
    """Return `export NAME=value` lines, quoted for a POSIX shell, for another terminal."""
    return [f"export {name}={shlex.quote(env[name])}" for name in EXPORTED]


def _choices(config: Any, port: int, mlflow_port: int | None) -> LocalChoices:
    """Return what `up` uses: every setting the user gave, and the rest started or generated."""
    given = config.model_fields_set
    state = (config.state_dir / "local").resolve()
    tracking_uri: str | None = None
    if mlflow_port is None and "mlflow_tracking_uri" in given:
        uri = config.mlflow_tracking_uri
        problem = tracking_uri_problem(uri)
        if problem:
            raise click.ClickException(f"MLFLOW_TRACKING_URI={uri}: {problem}")
        parsed = urlparse(uri)
        if not is_loopback(uri):
            tracking_uri = uri
        elif mlflow_answers(uri):
            tracking_uri = uri  # a server of the user's own already runs there
        else:
            mlflow_port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if tracking_uri is None and mlflow_port is None:
        mlflow_port = remembered_mlflow_port(state)
    secret = config.run_webhook_secret
    mlflow_secret = config.mlflow_webhook_secret
    token = config.ops_token
    return LocalChoices(
        key_prefix=config.key_prefix,
        queue=config.task_queue,
        port=port,
        mlflow_port=mlflow_port,
        tracking_uri=tracking_uri,
        redis_url=config.redis_url if "redis_url" in given else None,
        run_webhook_secret=secret.get_secret_value() if secret else None,
        mlflow_webhook_secret=mlflow_secret.get_secret_value() if mlflow_secret else None,
        ops_token=token.get_secret_value() if token else None,
        policy_file=config.policy_file,
    )


def mlflow_answers(uri: str) -> bool:
    """Tell whether an MLflow server answers /health at `uri`."""
    try:
        wait_http(f"{uri.rstrip('/')}/health", timeout=1)
    except RuntimeError:
        return False
    return True


@click.command()
@click.option("--port", default=8080, show_default=True, type=int, help="Receiver port.")
@click.option(
    "--mlflow-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port of the local MLflow server (default: the last one used, kept in the state folder).",
)
@policy_option
@friendly_errors
def up(port: int, mlflow_port: int | None) -> None:
    """Run the local stack in the foreground until Ctrl-C, SIGTERM or SIGHUP.

    Honours every REGPILOT_* and MLFLOW_* setting; prints `export` lines (stdout) that point
    another shell's `regpilot` commands at this stack.
    """
    config = settings()
    choices = _choices(config, port, mlflow_port)
    previous = {
        signum: signal.signal(signum, _stop_on_signal) for signum in (*STOP_SIGNALS, signal.SIGINT)
    }
    running = None
    try:
        running = start_local(
            config.state_dir / "local",
            key_prefix=choices.key_prefix,
            queue=choices.queue,
            choices=choices,
        )
        _announce(running)
        while True:
            dead = running.stack.check_alive()
            if dead:
                name = dead[0]
                raise PartFailed(name, "exited", running.stack.log_dir / f"{name}.log")
            time.sleep(1)
    except PartFailed as exc:
        raise click.ClickException(exc.describe()) from None
    except (KeyboardInterrupt, StopRequested) as exc:
        click.echo(f"stopping ({exc or 'Ctrl-C'})...", err=True)
    finally:
        if running is not None:
            running.stack.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _announce(running: Any) -> None:
    say = functools.partial(click.echo, err=True)
    say(f"receiver      {running.receiver_url}  (POST /webhooks/runs, /webhooks/mlflow)")
    say(f"ops page      {running.receiver_url}/ops/  (token: REGPILOT_OPS_TOKEN below)")
    say(f"MLflow UI     {running.mlflow_url}")
    say(f"Redis         {running.redis_url}  ({running.stack.redis_note})")
    say(f"logs          {running.stack.log_dir}")
    say("In another shell, paste these lines so `regpilot` commands use this stack:")
    for line in export_lines(running.env):
        click.echo(line)
    say("Ctrl-C to stop.")


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
