"""`regpilot ops ...` and `regpilot reconcile`: what an operator runs by hand."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import click

from regpilot.cli.common import emit_json, friendly_errors, policy_option, registry_from, settings

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _store() -> Any:
    from regpilot.stores.redis_store import RedisStore

    return RedisStore.from_settings(settings())


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def ops() -> None:
    """Operate regpilot: dead letters and the event history."""


@ops.command("events")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@friendly_errors
def events(limit: int, as_json: bool) -> None:
    """List received deliveries with their outcome, newest first."""
    rows = _store().events(limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no deliveries recorded")
        return
    from regpilot.cli.output import table

    table(
        (
            "received (UTC)",
            "source",
            "outcome",
            "verdict",
            "model",
            "version",
            "event",
            "run",
            "delivery",
            "detail",
        ),
        [
            (
                _when(row.get("received_at")),
                row.get("source"),
                row.get("outcome"),
                row.get("verdict"),
                row.get("model"),
                row.get("version"),
                row.get("event"),
                row.get("run_id"),
                row.get("delivery_id"),
                str(row.get("detail") or "")[:80],
            )
            for row in rows
        ],
    )


@ops.group("dead-letters")
def dead_letters() -> None:
    """List, show, retry and drop tasks whose retries ran out."""


@dead_letters.command("list")
@json_option
@friendly_errors
def list_letters(as_json: bool) -> None:
    """List dead letters, oldest first."""
    letters = _store().dead_letters()
    if as_json:
        emit_json(letters)
        return
    if not letters:
        click.echo("no dead letters")
    for letter in letters:
        click.echo(
            f"{letter['id']}  {_when(letter.get('dead_at'))}  {letter.get('task')}  "
            f"attempts={letter.get('attempts')}  replays={letter.get('replays', 0)}  "
            f"{letter.get('error', '')[:120]}"
        )


@dead_letters.command("show")
@click.argument("letter_id")
@friendly_errors
def show(letter_id: str) -> None:
    """Show one dead letter: payload, error, attempts."""
    letter = _store().dead_letter(letter_id)
    if letter is None:
        raise click.ClickException(f"no dead letter {letter_id}")
    emit_json(letter)


@dead_letters.command("retry")
@click.argument("letter_id", required=False)
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead letter.")
@friendly_errors
def retry(letter_id: str | None, retry_all: bool) -> None:
    """Queue a dead letter (or all) again; each leaves the store when its retry succeeds."""
    from regpilot.queue.celery_config import create_celery
    from regpilot.queue.replay import UnknownDeadLetter, replay, replay_all

    if bool(letter_id) == retry_all:
        raise click.UsageError("give a dead letter id or --all")
    config = settings()
    store, celery = _store(), create_celery(config)
    try:
        if retry_all:
            results = replay_all(store, celery, config.task_queue)
        else:
            results = [replay(store, celery, str(letter_id), config.task_queue)]
    except UnknownDeadLetter as exc:
        raise click.ClickException(f"no dead letter {exc}") from exc
    click.echo(f"requeued {len(results)} dead letter(s)")


@dead_letters.command("drop")
@click.argument("letter_id")
@friendly_errors
def drop(letter_id: str) -> None:
    """Drop a dead letter without replaying it."""
    if not _store().drop_dead_letter(letter_id):
        raise click.ClickException(f"no dead letter {letter_id}")
    click.echo(f"dropped {letter_id}")


def parse_duration(text: str) -> float:
    """Return hours from `90m`, `24h`, `2d` or a plain number of hours."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhd]?)\s*", text)
    if not match:
        raise click.BadParameter(f"{text!r}: use e.g. 90m, 24h or 2d")
    value, unit = float(match.group(1)), match.group(2) or "h"
    hours = {"m": value / 60, "h": value, "d": value * 24}[unit]
    if hours <= 0:
        raise click.BadParameter("the look-back must be positive")
    return hours


@click.command()
@click.option("--since", default="24h", show_default=True, help="Look-back: 90m, 24h, 2d.")
@click.option("--dry-run", is_flag=True, help="List what would be queued; queue nothing.")
@json_option
@policy_option
@friendly_errors
def reconcile(since: str, dry_run: bool, as_json: bool) -> None:
    """Find versions and runs no webhook brought, and queue them (what beat runs)."""
    from config.policy import load_policy
    from regpilot.queue.celery_config import create_celery
    from regpilot.queue.sweep import finding_queuer
    from regpilot.workflows.context import Context, Trigger
    from regpilot.workflows.reconcile import reconcile as sweep

    hours = parse_duration(since)
    config = settings()
    store = _store()
    ctx = Context(
        registry_from(config),
        load_policy(config.policy_file),
        config,
        store,
        Trigger("cli-reconcile"),
    )
    queue = finding_queuer(store, create_celery(config), config.task_queue)
    findings, queued = sweep(ctx, hours, queue, dry_run=dry_run)
    if as_json:
        emit_json({"found": [vars(f) for f in findings], "queued": queued, "dry_run": dry_run})
        return
    for finding in findings:
        what = (
            f"version {finding.name} v{finding.version}"
            if finding.kind == "version"
            else f"run {finding.run_id} -> {finding.name}"
        )
        click.echo(f"unjudged {what}")
    verb = "would queue" if dry_run else "queued"
    click.echo(f"{len(findings)} found, {verb} {len(findings) if dry_run else queued}")
