"""`regpilot retention`, `validate` and `history`: the plan, the gate alone, the record."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from regpilot.cli.common import emit_json, friendly_errors, policy_option

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _plan_dict(plan: Any) -> dict[str, Any]:
    def entries(items: Any) -> list[dict[str, Any]]:
        return [{"version": e.version, "reason": e.reason} for e in items]

    return {
        "action": plan.action.value,
        "kept": entries(plan.kept),
        "protected": entries(plan.protected),
        "prune": entries(plan.prune),
        "already_archived": entries(plan.already_archived),
    }


def _print_plan(name: str, plan: Any, dry_run: bool) -> None:
    from regpilot.cli.output import table

    verb = {"archive": "archive", "delete": "delete"}[plan.action.value]
    rows = (
        [(e.version, "keep", e.reason) for e in plan.kept]
        + [(e.version, "protected", e.reason) for e in plan.protected]
        + [(e.version, verb, e.reason) for e in plan.prune]
        + [(e.version, "leave", e.reason) for e in plan.already_archived]
    )
    click.echo(f"retention plan for {name}{' (dry run)' if dry_run else ''}:")
    if not rows:
        click.echo("  the model has no versions")
        return
    table(("version", "plan", "why"), sorted(rows, key=lambda r: -int(r[0])), indent=2)
    click.echo(
        f"  {len(plan.kept)} kept, {len(plan.protected)} protected, "
        f"{len(plan.prune)} to {verb}, {len(plan.already_archived)} left as they are"
    )


@click.command()
@click.argument("name")
@click.option(
    "--keep", type=click.IntRange(min=1), default=None, help="Override the policy's keep."
)
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Apply the plan without asking.")
@JSON_OPTION
@policy_option
@friendly_errors
def retention(name: str, keep: int | None, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Plan a retention pass, print it, ask, then apply it (unless --dry-run).

    The newest versions are kept; versions with an alias, a protected stage, the
    retention_hold tag, or that `rollback` would restore are never touched. Without a terminal
    it applies nothing unless --yes is given.
    """
    from regpilot.cli.output import progress
    from regpilot.cli.registry_session import open_model
    from regpilot.workflows.governance import require_model
    from regpilot.workflows.retention import apply_plan, plan_for
    from regpilot.workflows.snapshot import read_snapshot

    ctx, full = open_model(name, "retention", writes=not dry_run)
    require_model(ctx, full)
    plan = plan_for(ctx, read_snapshot(ctx, full), keep)
    if not as_json:
        _print_plan(full, plan, dry_run)
    applied: tuple[int, ...] = ()
    if not dry_run and plan.prune:
        _confirm(full, plan.action.value, len(plan.prune), yes)
        # The lock is taken after the answer (a person may take minutes; the worker must not
        # wait on them), so the plan is made again under it and must not have changed.
        with ctx.lock(full):
            current = plan_for(ctx, read_snapshot(ctx, full), keep)
            if current.prune != plan.prune:
                raise click.ClickException(
                    "the plan changed while you decided (new versions or aliases); nothing was "
                    "changed: run the command again"
                )
            applied = apply_plan(ctx, full, current, progress(f"{plan.action.value}"))
    if as_json:
        emit_json({"name": full, "dry_run": dry_run, **_plan_dict(plan), "applied": applied})
    elif dry_run:
        click.echo("dry run: nothing was changed")
    elif applied:
        done = "archived" if plan.action.value == "archive" else "deleted"
        click.echo(f"{done} {len(applied)} version(s): {', '.join(map(str, applied))}")
    else:
        click.echo("nothing to do")


def _confirm(name: str, action: str, count: int, yes: bool) -> None:
    """Ask before retention changes anything; refuse without a terminal unless --yes."""
    if yes:
        return
    question = f"{action} {count} version(s) of {name}?"
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.ClickException(
            f"retention would {action} {count} version(s) of {name}; no terminal to ask: "
            "pass --yes to apply it (or --dry-run to only see the plan). Nothing was changed."
        )
    if not click.confirm(question, default=False, err=True):
        raise click.ClickException("nothing was changed")


@click.command()
@click.option("--run-id", required=True, help="Run whose logged model(s) to judge.")
@click.option("--model-name", default=None, help="Registered model whose policy applies.")
@JSON_OPTION
@policy_option
@friendly_errors
def validate(run_id: str, model_name: str | None, as_json: bool) -> None:
    """Run the gate alone on a run's model: a dry run that changes nothing.

    Exits 1 when the gate fails, so a CI step can use it.
    """
    from regpilot.cli.output import verdict_table
    from regpilot.cli.registry_session import read_only_context
    from regpilot.core.registry_port import LoggedModel, RunPhase
    from regpilot.workflows.evaluation import judge_measured, run_subject
    from regpilot.workflows.validation import NoLoggedModel, judge, targets_for

    ctx = read_only_context()
    name = ctx.full_name(model_name) if model_name is not None else None
    run = ctx.registry.get_run(run_id)
    if run.phase is RunPhase.NOT_FINISHED:  # a FAILED/KILLED run fails the gate instead
        click.echo(f"warning: run {run_id} is {run.status}: its metrics may change", err=True)
    targets: list[tuple[str, LoggedModel | None]]
    try:
        targets = [(t.name, t.model) for t in targets_for(ctx, run, name)]
    except NoLoggedModel:
        if name is None:
            raise
        targets = [(name, None)]  # the run's metrics alone can still be judged
    results = []
    for target_name, model in targets:
        verdict, snapshot = judge(ctx, target_name, run, model)
        measurement = None
        if model is not None:  # the measured gate, when the policy has an `evaluation` block
            verdict, measurement, _ = judge_measured(
                ctx,
                target_name,
                run,
                model,
                verdict,
                snapshot,
                subjects=[run_subject(run.run_id, model.uri)],
                model_uri=model.uri,
            )
        results.append(
            {
                "model_name": target_name,
                "model_uri": model.uri if model is not None else None,
                "run_id": run_id,
                **verdict.as_dict(),
                **({"evaluation": measurement.result.as_dict()} if measurement else {}),
            }
        )
    failed = [r["model_name"] for r in results if r["status"] != "PASSED"]
    if as_json:
        emit_json({"run_id": run_id, "passed": not failed, "results": results})
    else:
        for result in results:
            where = result["model_uri"] or "no logged model: run metrics only"
            click.echo(f"{result['model_name']} ({where}): {result['status']}")
            verdict_table(result["checks"])
    if failed:
        raise click.ClickException(f"the gate FAILED for {', '.join(failed)} (nothing changed)")


def _by(trigger: dict[str, Any]) -> str:
    parts = [trigger.get("source", "?")]
    if trigger.get("actor"):
        parts.append(str(trigger["actor"]))
    if trigger.get("delivery_id"):
        parts.append(str(trigger["delivery_id"]))
    return ":".join(parts)


_SHOWN_ELSEWHERE = {"at", "model", "kind", "trigger", "version", "verdict", "checks"}


def describe(entry: dict[str, Any]) -> str:
    """Return the inputs of a decision record as one line (failed checks spelled out)."""
    parts = [
        f"{key}={value}"
        for key, value in entry.items()
        if key not in _SHOWN_ELSEWHERE and value is not None
    ]
    checks = entry.get("checks") or []
    failed = [c for c in checks if c.get("result") == "FAILED"]
    if checks:
        parts.append(f"checks={len(checks)}")
    for check in failed:
        parts.append(f"{check['name']}={check['actual']} (expected {check['expected']})")
    return " ".join(parts)


@click.command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option(
    "--alias",
    default=None,
    help="Show every move of this alias instead (from, to, when, by whom, why), oldest first.",
)
@click.option(
    "--at",
    "instant",
    default=None,
    help="With --alias: which version held it at this ISO 8601 time (e.g. 2026-11-30T12:00Z).",
)
@JSON_OPTION
@friendly_errors
def history(name: str, limit: int, alias: str | None, instant: str | None, as_json: bool) -> None:
    """Show a model's decisions, newest first: what, who or what triggered it, inputs, verdict.

    With --alias, the alias's timeline; with --alias and --at, who held it then.
    """
    from regpilot.cli.common import settings
    from regpilot.cli.output import table
    from regpilot.cli.registry_session import require_store
    from regpilot.core.naming import resolve_name

    config = settings()
    # The history lives in Redis alone: resolve the name without building a registry client
    # (and importing mlflow) just to spell it.
    full = resolve_name(
        name,
        unity_catalog=config.uses_unity_catalog,
        catalog=config.uc_catalog,
        schema=config.uc_schema,
    )
    if instant is not None and alias is None:
        raise click.ClickException("--at needs --alias (e.g. --alias champion --at 2026-11-30)")
    store = require_store(config, "history")
    if alias is not None:
        _alias_timeline(full, alias, instant, store.decisions(full, store.max_decisions), as_json)
        return
    entries = store.decisions(full, limit)
    if as_json:
        emit_json({"name": full, "decisions": entries})
        return
    if not entries:
        click.echo(f"no decisions recorded for {full}")
        return
    table(
        ("when (UTC)", "decision", "by", "version", "verdict", "inputs"),
        [
            (
                dt.datetime.fromtimestamp(float(e.get("at", 0)), tz=dt.UTC).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                e.get("kind", "?"),
                _by(e.get("trigger") or {}),
                e.get("version"),
                e.get("verdict"),
                describe(e),
            )
            for e in entries
        ],
    )


def _alias_timeline(
    name: str, alias: str, instant: str | None, records: list[dict[str, Any]], as_json: bool
) -> None:
    from regpilot.cli.output import table
    from regpilot.core.timeline import BadInstant, alias_moves, holder_at, iso, parse_instant

    moves = alias_moves(records, alias)
    if instant is not None:
        try:
            when = parse_instant(instant)
        except BadInstant as exc:
            raise click.ClickException(str(exc)) from exc
        held = holder_at(moves, when)
        if as_json:
            emit_json(
                {
                    "name": name,
                    "alias": alias,
                    "at": iso(when),
                    "version": held.version,
                    "since": iso(held.since) if held.since is not None else None,
                    "move": held.move.as_dict() if held.move else None,
                }
            )
        elif held.version is None:
            click.echo(f"{name}: no version held {alias!r} at {iso(when)}")
        elif held.move is None:
            click.echo(
                f"{name}: version {held.version} held {alias!r} at {iso(when)} "
                "(since before the first recorded move)"
            )
        else:
            click.echo(
                f"{name}: version {held.version} held {alias!r} at {iso(when)} "
                f"(since {iso(held.move.at)}, by {held.move.by}: {held.move.why})"
            )
        return
    if as_json:
        emit_json({"name": name, "alias": alias, "moves": [m.as_dict() for m in moves]})
        return
    if not moves:
        click.echo(f"no recorded moves of {alias!r} for {name}")
        return
    table(
        ("when (UTC)", "from", "to", "by", "why"),
        [
            (
                iso(m.at).replace("T", " ").removesuffix("+00:00"),
                f"v{m.from_version}" if m.from_version is not None else None,
                f"v{m.to_version}" if m.to_version is not None else "(removed)",
                m.by,
                m.why,
            )
            for m in moves
        ],
    )


COMMANDS: tuple[Any, ...] = (retention, validate, history)
