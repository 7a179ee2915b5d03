"""`regpilot doctor`'s judgements: what each probe's answer means, and how to fix it.

The probes (regpilot/cli/doctor.py) only gather facts: a ping, the workers' queues, a
timestamp, the MLflow webhook list, a test delivery's answer. The verdicts and the fixes are
pure functions here, so every diagnosis is unit-tested without breaking a real setup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from regpilot.core.records import PlainRecord

Status = Literal["ok", "fail", "skip"]
# What the regpilot webhook must subscribe to (the worker acts on this event).
REQUIRED_MLFLOW_EVENTS = ("model_version.created",)
# MLflow's test delivery sends this event: the receiver verifies its signature and ignores it,
# so a test never queues work for MLflow's made-up `example_model`.
TEST_EVENT = "model_version_tag.set"


@dataclass(frozen=True)
class Check(PlainRecord):
    """One line of the doctor's report."""

    name: str
    status: Status
    # What was seen, and for a failure how to fix it; both empty when there is nothing to say.
    detail: str = ""
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    """Return a passing check."""
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    """Return a failing check and what to do about it."""
    return Check(name, "fail", detail, fix)


def unreachable(name: str, where: str, fix: str, error: object | None = None) -> Check:
    """Return the failing check of a service at `where` that did not answer, with its error."""
    detail = f"{where} does not answer" if error is None else f"{where} does not answer: {error}"
    return fail(name, detail, fix)


def skip(name: str, detail: str) -> Check:
    """Return a check that does not apply to this setup."""
    return Check(name, "skip", detail)


def healthy(checks: Iterable[Check]) -> bool:
    """Tell whether nothing failed (skipped checks are fine)."""
    return all(check.status != "fail" for check in checks)


def judge_workers(active_queues: Mapping[str, Sequence[str]] | None, queue: str) -> Check:
    """Judge Celery's `inspect().active_queues()` answer: some worker must consume `queue`."""
    name = "workers"
    if not active_queues:
        return fail(
            name,
            "no Celery worker answered",
            f"start one: `regpilot worker` (it consumes the queue {queue!r}; same "
            "REGPILOT_REDIS_URL / REGPILOT_BROKER_URL and REGPILOT_KEY_PREFIX as here)",
        )
    consuming = sorted(worker for worker, queues in active_queues.items() if queue in queues)
    if not consuming:
        others = sorted({q for queues in active_queues.values() for q in queues})
        return fail(
            name,
            f"{len(active_queues)} worker(s) answered, none consumes {queue!r} "
            f"(they consume {', '.join(others) or 'nothing'})",
            f"set REGPILOT_TASK_QUEUE={queue} on the workers, or here to match them",
        )
    return ok(name, f"{len(consuming)} worker(s) consume {queue!r}: {', '.join(consuming)}")


def judge_beat(last_reconcile: float | None, now: float, interval: float) -> Check:
    """Judge beat by when the last reconciliation sweep ran (beat queues one every interval)."""
    name = "beat"
    fix = "start `regpilot beat` (exactly one per deployment); a worker must run the sweep too"
    if last_reconcile is None:
        return fail(name, "no reconciliation sweep has ever run", fix)
    age = max(0.0, now - last_reconcile)
    # Two intervals plus a minute: one late tick (a busy worker) is not an outage.
    if age > 2 * interval + 60:
        return fail(
            name,
            f"the last reconciliation ran {age:.0f} s ago (beat queues one every {interval:.0f} s)",
            fix,
        )
    return ok(name, f"the last reconciliation ran {age:.0f} s ago (every {interval:.0f} s)")


def judge_mlflow_webhook(
    hooks: Sequence[Mapping[str, Any]], name: str, expected_url: str | None
) -> Check:
    """Judge the MLflow webhook named `name`: installed, active, the events and the URL.

    Each hook is `{id, name, status, url, events}` with events as `entity.action` strings.
    """
    check = "mlflow webhook"
    install = "`regpilot webhooks install --url https://<receiver>/webhooks/mlflow`"
    mine = [hook for hook in hooks if hook.get("name") == name]
    if not mine:
        return fail(check, f"no webhook named {name!r} on the MLflow server", f"run {install}")
    hook = mine[0]
    if hook.get("status") != "ACTIVE":
        return fail(
            check,
            f"webhook {hook.get('id')} is {hook.get('status')}, so MLflow sends nothing",
            f"run {install} (it sets the webhook ACTIVE)",
        )
    missing = [event for event in REQUIRED_MLFLOW_EVENTS if event not in hook.get("events", ())]
    if missing:
        return fail(
            check,
            f"webhook {hook.get('id')} does not subscribe to {', '.join(missing)}",
            f"run {install} (default event model_version.created)",
        )
    url = str(hook.get("url", ""))
    if expected_url is not None and url != expected_url:
        return fail(
            check,
            f"webhook {hook.get('id')} points at {url}, not {expected_url}",
            f"run `regpilot webhooks install --url {expected_url}`",
        )
    if expected_url is None and not url.rstrip("/").endswith("/webhooks/mlflow"):
        return fail(
            check,
            f"webhook {hook.get('id')} points at {url}, which is not a /webhooks/mlflow URL",
            f"run {install}",
        )
    return ok(check, f"webhook {hook.get('id')} is ACTIVE -> {url}")


def judge_test_delivery(
    status: int | None, body: str, error: str, *, listing_failed: bool = False
) -> Check:
    """Judge MLflow's own test delivery to the receiver, naming the likely cause when it failed."""
    name = "test delivery"
    text = f"{body} {error}".strip()
    lowered = text.lower()
    if listing_failed or (status is None and "internal_error" in lowered):
        return fail(
            name,
            f"MLflow could not read its webhooks: {text[:200]}",
            "set the same MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY (a Fernet key) on every "
            "`mlflow server` process and restart it; without one each process makes its own "
            "key and cannot decrypt the others' webhook secrets. Then reinstall the webhook.",
        )
    if status is not None and 200 <= status < 300:
        return ok(name, f"the receiver accepted MLflow's signed test delivery ({status})")
    if "scheme" in lowered:
        return fail(
            name,
            f"MLflow refused the receiver URL's scheme: {text[:200]}",
            "use an https:// receiver URL, or set MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https on "
            "the MLflow server (local play only)",
        )
    if "non-public" in lowered or "private" in lowered:
        return fail(
            name,
            f"MLflow refuses to send to a private address: {text[:200]}",
            "set MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true on the MLflow server (receiver on "
            "localhost, a VPC or Kubernetes)",
        )
    if status == 401:
        return fail(
            name,
            f"the receiver refused the signature (401): {text[:200]}",
            "the webhook's secret differs from REGPILOT_MLFLOW_WEBHOOK_SECRET (or the clocks "
            "differ by more than REGPILOT_TIMESTAMP_TOLERANCE_SECONDS): run `regpilot webhooks "
            "install --url ...` with the receiver's secret",
        )
    if status is not None and "host" in lowered:
        return fail(
            name,
            f"the receiver refused the Host header ({status}): {text[:200]}",
            "add the host name MLflow uses in the webhook URL to the receiver's allowed hosts",
        )
    if status is None:
        return fail(
            name,
            f"MLflow could not reach the receiver: {text[:200]}",
            "check that the webhook URL is reachable from the MLflow server (DNS, firewall, "
            "TLS certificate) and that `regpilot serve` runs",
        )
    return fail(
        name,
        f"the receiver answered {status}: {text[:200]}",
        "see the receiver's log for this delivery",
    )
