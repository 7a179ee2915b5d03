"""`regpilot policy check|backtest`: validate a policy file; see what it would have decided."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from regpilot.cli.common import emit_json, friendly_errors

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
@JSON_OPTION
@friendly_errors
def check(file: Path | None, as_json: bool) -> None:
    """Validate a policy file (default: REGPILOT_POLICY_FILE) and print each model's policy.

    Every model entry shows its effective policy, with `defaults` applied. An invalid file
    exits 1 with the file, line and field.
    """
    import yaml

    from config.policy import PolicyError, evaluation_dataset_problems, load_policy
    from regpilot.cli.common import settings

    path = file if file is not None else settings().policy_file
    loaded = load_policy(path)
    unusable = evaluation_dataset_problems(loaded)
    if unusable:  # a local golden dataset is read once here, header only
        raise PolicyError("; ".join(unusable))
    effective = effective_policy(loaded)
    if as_json:
        emit_json({"file": str(path), "valid": True, **effective})
        return
    click.echo(f"{path}: valid")
    click.echo("")
    click.echo(yaml.safe_dump(effective, sort_keys=False, default_flow_style=None).rstrip())


@policy.command("backtest")
@click.argument("name")
@JSON_OPTION
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
