"""`regpilot explain`: everything regpilot did about one run or one model version, and why."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from regpilot.cli.common import emit_json, friendly_errors, settings


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(float(ts), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _concerns(
    entry: dict[str, Any], run_ids: set[str], model: str | None, version: int | None
) -> bool:
    if entry.get("run_id") and str(entry["run_id"]) in run_ids:
        return True
    if model is None or version is None:
        return False
    versions = {v.strip() for v in str(entry.get("version", "")).split(",")}
    return str(version) in versions and model in str(entry.get("model", "")).split(",")


def _letter_concerns(
    letter: dict[str, Any], run_ids: set[str], model: str | None, version: int | None
) -> bool:
    text = json.dumps([letter.get("args"), letter.get("kwargs")], default=str)
    if any(run_id in text for run_id in run_ids):
        return True
    return model is not None and version is not None and model in text and f"{version}" in text


def _logged_metrics(config: Any, run_id: str, decisions: list[dict[str, Any]]) -> list[str] | None:
    for decision in decisions:
        if decision.get("run_id") == run_id and "logged_metrics" in decision:
            return list(decision["logged_metrics"])
    from regpilot.registry.mlflow_http import MlflowUnavailable, is_http, run_metric_names

    if not is_http(config.mlflow_tracking_uri):
        return None
    try:
        return run_metric_names(config.mlflow_tracking_uri, run_id, timeout=5)
    except MlflowUnavailable:
        return None


def gather(
    config: Any, store: Any, run_id: str | None, model: str | None, version: int | None
) -> dict[str, Any]:
    """Return the deliveries, decisions and dead letters about a run or a model version."""
    from regpilot.core.summary import explain_check

    models = [model] if model else store.models()
    decisions = [d for m in models for d in store.decisions(m, config.decisions_max_per_model)]
    run_ids = {run_id} if run_id else set()
    if model is not None and version is not None:
        run_ids |= {
            str(d["run_id"])
            for d in decisions
            if d.get("run_id") and str(d.get("version", "")) == str(version)
        }
    decisions = [d for d in decisions if _concerns(d, run_ids, model, version)]
    deliveries = [
        e for e in store.events(config.history_max_events) if _concerns(e, run_ids, model, version)
    ]
    letters = [
        letter
        for letter in store.dead_letters()
        if _letter_concerns(letter, run_ids, model, version)
    ]
    logged = {r: _logged_metrics(config, r, decisions) for r in sorted(run_ids)}
    for decision in decisions:
        metrics = logged.get(str(decision.get("run_id")))
        for check in decision.get("checks") or []:
            check["explanation"] = explain_check(check, metrics)
    return {
        "run_ids": sorted(run_ids),
        "model": model,
        "version": version,
        "logged_metrics": logged,
        "deliveries": sorted(deliveries, key=lambda e: e.get("received_at") or 0),
        "decisions": sorted(decisions, key=lambda d: d.get("at") or 0),
        "dead_letters": letters,
    }


@click.command()
@click.option("--run-id", default=None, help="The training run to explain.")
@click.option("--model", "model_name", default=None, help="Registered model (with --version).")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Model version.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@friendly_errors
def explain(run_id: str | None, model_name: str | None, version: int | None, as_json: bool) -> None:
    """Show every delivery, task, verdict and check about a run or a model version.

    Reads regpilot's Redis history (REGPILOT_REDIS_URL, REGPILOT_KEY_PREFIX); asks MLflow only
    for the metrics an older run logged when the history does not say.
    """
    from regpilot.cli.registry_session import require_store
    from regpilot.core.naming import resolve_name

    if run_id is None and (model_name is None or version is None):
        raise click.UsageError("give --run-id ID, or --model NAME --version N")
    if (model_name is None) != (version is None):
        raise click.UsageError("--model and --version go together")
    config = settings()
    full = None
    if model_name is not None:
        full = resolve_name(
            model_name,
            unity_catalog=config.uses_unity_catalog,
            catalog=config.uc_catalog,
            schema=config.uc_schema,
        )
    store = require_store(config, "explain")
    found = gather(config, store, run_id, full, version)
    if as_json:
        emit_json(found)
        return
    subject = f"run {run_id}" if run_id else f"{full} version {version}"
    if not (found["deliveries"] or found["decisions"] or found["dead_letters"]):
        raise click.ClickException(
            f"nothing recorded about {subject} under REGPILOT_KEY_PREFIX={config.key_prefix} "
            "(was regpilot notified? is this the prefix the receiver and worker use?)"
        )
    _print(subject, found)


def _print(subject: str, found: dict[str, Any]) -> None:
    from regpilot.cli.output import table

    click.echo(f"{subject}  (runs: {', '.join(found['run_ids']) or '-'})")
    for run, metrics in found["logged_metrics"].items():
        shown = ", ".join(metrics) if metrics else ("none" if metrics == [] else "unknown")
        click.echo(f"metrics run {run} logged: {shown}")
    click.echo(f"\ndeliveries ({len(found['deliveries'])}):")
    if found["deliveries"]:
        table(
            (
                "received (UTC)",
                "source",
                "event",
                "outcome",
                "verdict",
                "model",
                "version",
                "delivery",
                "detail",
            ),
            [
                (
                    _when(e.get("received_at")),
                    e.get("source"),
                    e.get("event"),
                    e.get("outcome"),
                    e.get("verdict"),
                    e.get("model"),
                    e.get("version"),
                    e.get("delivery_id"),
                    str(e.get("detail") or "")[:100],
                )
                for e in found["deliveries"]
            ],
            indent=2,
        )
    click.echo(f"\ndecisions ({len(found['decisions'])}):")
    for decision in found["decisions"]:
        trigger = decision.get("trigger") or {}
        by = ":".join(str(trigger[k]) for k in ("source", "actor") if trigger.get(k)) or "-"
        extras = [f"{k}={decision[k]}" for k in ("version", "alias", "verdict") if decision.get(k)]
        click.echo(
            f"  {_when(decision.get('at'))}  {decision.get('kind')}  {decision.get('model')}  "
            f"by {by}  {' '.join(extras)}"
        )
        for check in decision.get("checks") or []:
            click.echo(f"    {check.get('result', '?'):<6} {check['explanation']}")
    click.echo(f"\ndead letters ({len(found['dead_letters'])}):")
    for letter in found["dead_letters"]:
        click.echo(f"  {letter.get('id')}  {letter.get('task')}  {str(letter.get('error'))[:160]}")
