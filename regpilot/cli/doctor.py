"""`regpilot doctor`: check the whole setup, one line per check, each failure with its fix.

The probes here only gather facts (each with a short timeout); what they mean is decided in
regpilot/core/doctor.py. `/readyz` stays the cheap check a load balancer calls; this is the
deep one a person (or a deploy pipeline, with `--json`) runs.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlparse

import click

from regpilot.cli.common import emit_json
from regpilot.cli.webhooks import WEBHOOK_NAME
from regpilot.core.doctor import (
    TEST_EVENT,
    Check,
    fail,
    healthy,
    judge_beat,
    judge_mlflow_webhook,
    judge_test_delivery,
    judge_workers,
    ok,
    skip,
    unreachable,
)


class Doctor:
    """Run the checks in order; later checks skip when what they need already failed."""

    def __init__(
        self,
        settings: Any,
        *,
        webhook_name: str,
        receiver_url: str | None,
        timeout: float,
    ) -> None:
        self.settings = settings
        self.webhook_name = webhook_name
        self.receiver_url = receiver_url
        self.timeout = timeout
        self.checks: list[Check] = []
        self.hook_id: str | None = None

    def run(self) -> list[Check]:
        """Return every check's result."""
        redis_ok = self._add(self.redis)
        self._add(self.broker)
        self._add(self.policy)
        self._add(self.notification_variables)
        if redis_ok:
            self._add(self.workers)
            self._add(self.beat)
        else:
            self.checks += [skip("workers", "needs Redis"), skip("beat", "needs Redis")]
        mlflow_ok = self._add(self.mlflow)
        if mlflow_ok:
            hook_ok = self._add(self.mlflow_webhook)
            if self.hook_id is not None:
                self._add(self.test_delivery)
            elif not hook_ok:
                self.checks.append(skip("test delivery", "needs the MLflow webhook"))
        else:
            self.checks += [
                skip("mlflow webhook", "needs MLflow"),
                skip("test delivery", "needs MLflow"),
            ]
        self._add(self.databricks)
        return self.checks

    def _add(self, probe: Callable[[], Check]) -> bool:
        name = probe.__name__.replace("_", " ")
        try:
            check = probe()
        except Exception as exc:  # a probe that breaks is a failed check, never a traceback
            check = fail(name, f"{type(exc).__name__}: {str(exc)[:300]}", "see the message")
        self.checks.append(check)
        return check.status == "ok"

    # --- the probes ----------------------------------------------------------------------------

    def redis(self) -> Check:
        from regpilot.stores.redis_store import RedisStore

        where = _where(self.settings.redis_url)
        if RedisStore.from_settings(self.settings).ping():
            return ok("redis", f"{where} answers")
        return unreachable(
            "redis", where, "start Redis, or set REGPILOT_REDIS_URL to one that runs"
        )

    def broker(self) -> Check:
        url = self.settings.effective_broker_url
        if url == self.settings.redis_url:
            return skip("broker", "the broker is the Redis above")
        from kombu import Connection

        with Connection(url, connect_timeout=self.timeout) as connection:
            try:
                connection.ensure_connection(max_retries=1, timeout=self.timeout)
            except Exception as exc:
                fix = "start the broker, or fix REGPILOT_BROKER_URL"
                return unreachable("broker", _where(url), fix, exc)
        return ok("broker", f"{_where(url)} answers")

    def policy(self) -> Check:
        from config.policy import PolicyError, load_policy

        try:
            loaded = load_policy(self.settings.policy_file)
        except PolicyError as exc:
            return fail("policy", str(exc), "fix the policy file (`regpilot policy check`)")
        destinations = _destinations(loaded)
        return ok(
            "policy",
            f"{self.settings.policy_file}: {len(loaded.overrides)} model override(s), "
            f"{len(destinations)} notification destination(s)",
        )

    def notification_variables(self) -> Check:
        from config.policy import PolicyError, load_policy
        from config.settings import notify_variable

        try:
            destinations = _destinations(load_policy(self.settings.policy_file))
        except PolicyError:
            return skip("notification variables", "needs a valid policy")
        if not destinations:
            return skip("notification variables", "the policy sends no notifications")
        missing, malformed = [], []
        for destination in destinations.values():
            for variable in (destination.url_env, destination.secret_env):
                if variable and notify_variable(variable) is None:
                    missing.append(variable)
            secret = notify_variable(destination.secret_env) if destination.secret_env else None
            if secret is not None and not secret.get_secret_value().startswith("whsec_"):
                malformed.append(str(destination.secret_env))
        if missing or malformed:
            detail = "; ".join(
                part
                for part in (
                    f"unset: {', '.join(sorted(set(missing)))}" if missing else "",
                    f"not whsec_ secrets: {', '.join(sorted(set(malformed)))}" if malformed else "",
                )
                if part
            )
            return fail(
                "notification variables",
                detail,
                "set them on the workers (and here), e.g. a whsec_<base64> secret per webhook "
                "destination; docs/NOTIFICATIONS.md",
            )
        return ok("notification variables", f"all set for {len(destinations)} destination(s)")

    def workers(self) -> Check:
        from regpilot.queue.celery_config import create_celery

        app = create_celery(self.settings)
        try:
            replies = app.control.inspect(timeout=self.timeout).active_queues()
        finally:
            app.close()
        queues = {
            worker: [str(queue.get("name")) for queue in declared or []]
            for worker, declared in (replies or {}).items()
        }
        return judge_workers(queues, self.settings.task_queue)

    def beat(self) -> Check:
        from regpilot.stores.redis_store import RedisStore

        last = RedisStore.from_settings(self.settings).last_reconcile()
        return judge_beat(last, time.time(), float(self.settings.reconcile_interval_seconds))

    def mlflow(self) -> Check:
        uri = self.settings.mlflow_tracking_uri
        if urlparse(uri).scheme not in ("http", "https"):
            return skip("mlflow", f"tracking URI {uri!r} is not an MLflow server URL")
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/version", timeout=5) as answer:
                version = answer.read(100).decode("utf-8", "replace").strip()
        except (urllib.error.URLError, OSError) as exc:
            fix = "start the MLflow server, or fix MLFLOW_TRACKING_URI"
            return unreachable("mlflow", uri, fix, getattr(exc, "reason", exc))
        return ok("mlflow", f"{uri} answers, MLflow {version}")

    def mlflow_webhook(self) -> Check:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.settings.mlflow_tracking_uri)
        try:
            listed = client.list_webhooks(max_results=1000)
        except MlflowException as exc:
            return judge_test_delivery(None, "", str(exc), listing_failed=True)
        hooks = [_hook_dict(hook) for hook in listed]
        check = judge_mlflow_webhook(hooks, self.webhook_name, self.receiver_url)
        named = [hook for hook in hooks if hook["name"] == self.webhook_name]
        self.hook_id = named[0]["id"] if named and named[0]["status"] == "ACTIVE" else None
        return check

    def test_delivery(self) -> Check:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.settings.mlflow_tracking_uri)
        try:
            result = client.test_webhook(str(self.hook_id), cast(Any, TEST_EVENT))
        except MlflowException as exc:
            return judge_test_delivery(None, "", str(exc), listing_failed=True)
        return judge_test_delivery(
            result.response_status, result.response_body or "", result.error_message or ""
        )

    def databricks(self) -> Check:
        if not self.settings.databricks_enabled:
            return skip("databricks", "REGPILOT_DATABRICKS_ENABLED is off")
        from regpilot.registry.databricks import workspace_client

        try:
            me = workspace_client(self.settings).current_user.me()
        except Exception as exc:
            return fail(
                "databricks",
                f"authentication failed: {type(exc).__name__}: {str(exc)[:200]}",
                "set DATABRICKS_HOST and DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID and "
                "DATABRICKS_CLIENT_SECRET, or DATABRICKS_CONFIG_PROFILE)",
            )
        return ok("databricks", f"{self.settings.databricks_host}: signed in as {me.user_name}")


def _destinations(policy: Any) -> dict[str, Any]:
    found = dict(policy.defaults.notifications)
    for model_policy in policy.overrides.values():
        found.update(model_policy.notifications)
    return found


def _hook_dict(hook: Any) -> dict[str, Any]:
    def plain(value: Any) -> str:
        return str(getattr(value, "value", value))

    return {
        "id": hook.webhook_id,
        "name": hook.name,
        "status": plain(hook.status).upper(),
        "url": hook.url,
        "events": [f"{plain(e.entity)}.{plain(e.action)}".lower() for e in hook.events],
    }


def _where(url: str) -> str:
    # Never print a password that may be in the URL.
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname}:{parsed.port or ''}{parsed.path or ''}"


_MARKS = {"ok": "ok  ", "fail": "FAIL", "skip": "skip"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--url",
    "receiver_url",
    default=None,
    help="The receiver's public POST /webhooks/mlflow URL the MLflow webhook must point at.",
)
@click.option(
    "--webhook-name",
    default=WEBHOOK_NAME,
    show_default=True,
    help="Name of regpilot's webhook on the MLflow server.",
)
@click.option(
    "--timeout",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.1, 30),
    help="Seconds to wait for workers and the broker.",
)
def doctor(as_json: bool, receiver_url: str | None, webhook_name: str, timeout: float) -> None:
    """Check the whole setup and say how to fix what is wrong; exit 1 when something is."""
    from pydantic import ValidationError

    from config.settings import Settings

    try:
        config = Settings()
    except ValidationError as exc:
        checks = [fail("settings", str(exc).splitlines()[0], "fix the REGPILOT_* variables")]
    else:
        checks = Doctor(
            config, webhook_name=webhook_name, receiver_url=receiver_url, timeout=timeout
        ).run()
    good = healthy(checks)
    if as_json:
        emit_json({"healthy": good, "checks": [check.as_dict() for check in checks]})
    else:
        for check in checks:
            click.echo(f"{_MARKS[check.status]}  {check.name:<24} {check.detail}")
            if check.fix:
                click.echo(f"      {'':<24} fix: {check.fix}")
        click.echo("all good" if good else "something is wrong: see the fixes above")
    if not good:
        raise SystemExit(1)
