"""`regpilot policy check|backtest`: validate a policy file; see what it would have decided."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from regpilot.cli.common import emit_json, friendly_errors, policy_option

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group()
def policy() -> None:
    """Check the governance policy and try it on existing versions."""


def effective_policy(loaded: Any) -> dict[str, Any]:
    """Return the effective policy of `defaults` and of every named model, as plain data."""
    return {
        "defaults": loaded.defaults.model_dump(mode="json", exclude_none=True),
        "models": {
            name: model.model_dump(mode="json", exclude_none=True)
            for name, model in sorted(loaded.overrides.items())
        },
        "name_mapping": dict(loaded.name_mapping),
    }


@policy.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "extra_models",
    multiple=True,
    help="Also check the metric names of this registered model (repeatable).",
)
@JSON_OPTION
@policy_option
@friendly_errors
def check(file: Path | None, extra_models: tuple[str, ...], as_json: bool) -> None:
    """Validate a policy file (default: REGPILOT_POLICY_FILE) and print each model's policy.

    Every problem is listed at once with its file:line and key; exit 1 when there is any.
    When MLflow answers, a metric the policy requires that no run behind a model's registered
    versions has logged is a warning, with the closest logged names.
    """
    import yaml

    from config.policy import PolicyError, evaluation_dataset_problems, load_policy
    from regpilot.cli.common import settings

    config = settings()
    path = file if file is not None else config.policy_file
    loaded = load_policy(path)
    unusable = evaluation_dataset_problems(loaded)
    if unusable:  # a local golden dataset is read once here, header only
        raise PolicyError("; ".join(unusable))
    effective = effective_policy(loaded)
    warnings, note = metric_warnings(config, loaded, path, extra_models)
    if as_json:
        emit_json(
            {"file": str(path), "valid": True, "warnings": warnings, "note": note, **effective}
        )
        return
    if note:
        click.echo(note, err=True)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{path}: valid")
    click.echo("")
    click.echo(yaml.safe_dump(effective, sort_keys=False, default_flow_style=None).rstrip())


def metric_warnings(
    config: Any, loaded: Any, path: Path, extra_models: tuple[str, ...] = ()
) -> tuple[list[str], str]:
    """Return warnings for required metrics no run of a model logged, and a note on MLflow.

    Asks MLflow over plain HTTP (no `import mlflow`); the models checked are those the policy
    names (`models:` and `name_mapping`) plus `extra_models`.
    """
    import yaml

    from config.policy import _line_of
    from regpilot.core.summary import closest_names
    from regpilot.registry.mlflow_http import (
        MlflowUnavailable,
        healthy,
        is_http,
        model_metric_names,
    )

    uri = config.mlflow_tracking_uri
    names = sorted({*loaded.overrides, *loaded.name_mapping.values(), *extra_models})
    if not names:
        return [], ""
    if not is_http(uri) or not healthy(uri, timeout=3):
        return [], f"note: MLflow at {uri} did not answer; metric names were not checked"
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        root = None
    warnings: list[str] = []
    for name in names:
        try:
            logged = model_metric_names(uri, name, timeout=10)
        except MlflowUnavailable as exc:
            return warnings, f"note: MLflow at {uri} failed ({exc}); metric names not all checked"
        if not logged:
            continue  # no registered version yet: nothing to compare with
        policy = loaded.for_model(name)
        wanted = set(policy.metrics)
        if policy.champion is not None:
            wanted.add(policy.champion.metric)
        for metric in sorted(wanted - logged):
            key: tuple[str, ...] = ("models", name, "metrics", metric)
            if name not in loaded.overrides or metric not in (
                _written_metrics(root, name) or set()
            ):
                key = ("defaults", "metrics", metric)
            line = _line_of(root, key) if root is not None else None
            where = f"{path}:{line}" if line else str(path)
            near = closest_names(metric, logged)
            hint = f"; did you mean {' or '.join(near)}?" if near else ""
            warnings.append(
                f"{where}: policy key '{'.'.join(key)}': no run behind {name}'s registered "
                f"versions logged '{metric}'{hint}"
            )
    return warnings, ""


def _written_metrics(root: Any, name: str) -> set[str] | None:
    import yaml

    node = root
    for part in ("models", name, "metrics"):
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value if k.value == part), None)
    if not isinstance(node, yaml.MappingNode):
        return None
    return {k.value for k, _ in node.value}


@policy.command("backtest")
@click.argument("name")
@JSON_OPTION
@policy_option
@friendly_errors
def backtest(name: str, as_json: bool) -> None:
    """Judge every existing version of NAME under the current policy; change nothing.

    Shows, per version, the verdict it carries and the one the policy gives today, so a gate
    can be tuned before it is deployed.
    """
    from regpilot.cli.output import progress, table
    from regpilot.cli.registry_session import open_model
    from regpilot.workflows.governance import backtest as run_backtest

    ctx, full = open_model(name, "policy backtest", writes=False)
    rows = run_backtest(ctx, full, progress("backtest"))
    passing = sum(1 for row in rows if row.verdict.passed)
    changed = sum(1 for row in rows if row.recorded and row.recorded != row.verdict.status)
    if as_json:
        emit_json(
            {
                "name": full,
                "policy": str(ctx.policy.source),
                "versions": [
                    {
                        "version": row.version,
                        "aliases": list(row.aliases),
                        "recorded": row.recorded,
                        "now": row.verdict.status,
                        "note": row.note,
                        "checks": row.verdict.as_dict()["checks"],
                    }
                    for row in rows
                ],
                "would_pass": passing,
                "changed": changed,
            }
        )
        return
    click.echo(f"{full} under {ctx.policy.source}:")
    table(
        ("version", "aliases", "recorded", "now", "why not"),
        [
            (
                row.version,
                ", ".join(row.aliases),
                row.recorded,
                row.verdict.status,
                "; ".join(
                    f"{c.name} {c.actual} (expected {c.expected})" for c in row.verdict.failures
                )
                or row.note,
            )
            for row in rows
        ],
        indent=2,
    )
    click.echo(
        f"{passing} of {len(rows)} version(s) would pass; {changed} verdict(s) differ from "
        "the recorded one. Nothing was changed."
    )


COMMANDS: tuple[Any, ...] = (policy,)
