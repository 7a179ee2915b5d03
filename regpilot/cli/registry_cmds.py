"""`regpilot register-model`, `details`, `compare`, `alias`, `transition`, `rollback`.

The same workflows as the worker: the gate, registration, alias moves and retention are the
core loop's own functions; these commands add a person's name to each decision record.
"""

from __future__ import annotations

import math
from typing import Any

import click

from regpilot.cli.common import emit_json, friendly_errors, policy_option

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
VERSION = click.IntRange(min=1)


def parse_tags(values: tuple[str, ...], unity_catalog: bool) -> dict[str, str]:
    """Return `k=v` pairs as a dict; refuse regpilot's own tags and, on UC, unsafe keys."""
    from regpilot.core.tags import MAX_TAG_VALUE, RESERVED_TAGS, is_safe_tag_key

    tags: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--tags")
        if key in RESERVED_TAGS:
            raise click.BadParameter(
                f"{key!r} is set by regpilot itself and cannot be given", param_hint="--tags"
            )
        if unity_catalog and not is_safe_tag_key(key):
            raise click.BadParameter(
                f"{key!r}: Unity Catalog tag keys take letters, digits, '_' and spaces",
                param_hint="--tags",
            )
        if unity_catalog and len(value) > MAX_TAG_VALUE:
            raise click.BadParameter(
                f"the value of {key!r} exceeds {MAX_TAG_VALUE} characters", param_hint="--tags"
            )
        tags[key] = value
    return tags


@click.command("register-model")
@click.option("--run-id", required=True, help="Run whose logged model to register.")
@click.option(
    "--model-name", required=True, help="Registered model (short names get catalog.schema on UC)."
)
@click.option("--description", default=None, help="Description of the new version.")
@click.option(
    "--tags",
    "tags",
    multiple=True,
    metavar="KEY=VALUE",
    help="Tags for the new version: `--tags team=ds owner=me` or `--tags a=1 --tags b=2`.",
)
# `--tags team=ds owner=me`: the values after the first land here (the command has no other
# positional argument), so a shell line reads as people write it.
@click.argument("more_tags", nargs=-1, metavar="")
@click.option(
    "--skip-validation",
    is_flag=True,
    help="Register without the gate (recorded in the tags; no challenger alias).",
)
@JSON_OPTION
@policy_option
@friendly_errors
def register_model(
    run_id: str,
    model_name: str,
    description: str | None,
    tags: tuple[str, ...],
    more_tags: tuple[str, ...],
    skip_validation: bool,
    as_json: bool,
) -> None:
    """Validate a run's model against its policy and register it.

    A version that passes gets the seed tags, the metadata tag and the `challenger` alias
    (and `champion` when the policy auto-promotes); retention runs afterwards. A failing gate
    prints every check and registers nothing.
    """
    from regpilot.cli.output import print_version, verdict_table, version_dict
    from regpilot.cli.registry_session import open_model, require_store
    from regpilot.workflows.governance import require_version
    from regpilot.workflows.run_completed import RegistrationOptions, process_run_completed

    stray = [value for value in more_tags if "=" not in value]
    if stray or (more_tags and not tags):
        raise click.UsageError(f"unexpected argument(s): {' '.join(stray or more_tags)}")
    tags = (*tags, *more_tags)
    ctx, name = open_model(model_name, "register-model", writes=False)
    options = RegistrationOptions(
        description=description,
        tags=parse_tags(tags, ctx.settings.uses_unity_catalog),
        skip_validation=skip_validation,
    )
    ctx.store = require_store(ctx.settings, "register-model")  # all input checked first
    (outcome,) = process_run_completed(ctx, run_id, name, options)
    checks = outcome.verdict.as_dict()["checks"] if not outcome.skipped else []
    registered = outcome.version is not None
    details = require_version(ctx, name, outcome.version) if outcome.version is not None else None
    if as_json:
        emit_json(
            {
                **outcome.as_dict(),
                "registered": registered,
                "details": version_dict(details) if details is not None else None,
            }
        )
    else:
        if outcome.skipped:
            click.echo("gate: SKIPPED on request (tagged validation_skipped=true)")
        else:
            click.echo(f"gate: {outcome.status}")
            verdict_table(checks)
        if details is not None:
            state = "registered" if outcome.created else "already registered"
            click.echo(f"\n{state}: {name} version {outcome.version} ({outcome.status})")
            if outcome.aliases:
                click.echo(f"aliases moved: {', '.join(outcome.aliases)}")
            if outcome.pruned:
                click.echo(f"retention: {', '.join(map(str, outcome.pruned))} pruned")
            click.echo("")
            print_version(details)
    if not registered:
        raise click.ClickException(f"{name}: the gate FAILED, nothing was registered")


@click.command()
@click.argument("name")
@click.option("--version", "version", type=VERSION, default=None, help="Version (default: latest).")
@JSON_OPTION
@policy_option
@friendly_errors
def details(name: str, version: int | None, as_json: bool) -> None:
    """Show a model version: stage, status, aliases, run, description, tags.

    Without --version, the latest version: the highest version number.
    """
    from regpilot.cli.output import number, print_version, table, version_dict
    from regpilot.cli.registry_session import open_model
    from regpilot.workflows.governance import (
        latest_version,
        measured_metrics_of,
        require_version,
    )

    ctx, full = open_model(name, "details", writes=False)
    found = latest_version(ctx, full) if version is None else require_version(ctx, full, version)
    measured = measured_metrics_of(ctx, found)
    if as_json:
        emit_json({**version_dict(found), **({"measured": measured} if measured else {})})
    else:
        print_version(found)
        if measured:
            click.echo("measured on the golden dataset (evaluation run):")
            table(("metric", "value"), [(k, number(v)) for k, v in sorted(measured.items())])


@click.command()
@click.argument("name")
@click.argument("old", metavar="V1", type=VERSION)
@click.argument("new", metavar="V2", type=VERSION)
@JSON_OPTION
@policy_option
@friendly_errors
def compare(name: str, old: int, new: int, as_json: bool) -> None:
    """Compare every metric of two versions (V2 - V1), and their stages and aliases.

    A metric one side lacks is shown as missing, never as 0.
    """
    from regpilot.cli.output import number, signed, table
    from regpilot.cli.registry_session import open_model
    from regpilot.workflows.governance import compare_versions

    ctx, full = open_model(name, "compare", writes=False)
    result = compare_versions(ctx, full, old, new)
    sides = {"old": result.old, "new": result.new}
    if as_json:
        emit_json(
            {
                "name": full,
                **{
                    key: {"version": v.version, "stage": v.stage, "aliases": list(v.aliases)}
                    for key, v in sides.items()
                },
                "metrics": [
                    {
                        "metric": row.metric,
                        "old": _finite(row.old),
                        "new": _finite(row.new),
                        "delta": row.delta,
                        "change": row.change.value,
                    }
                    for row in result.metrics
                ],
            }
        )
        return
    click.echo(f"{full}: version {old} (old) vs version {new} (new)")
    table(
        ("", f"v{old}", f"v{new}"),
        [
            ("stage", result.old.stage or "None", result.new.stage or "None"),
            ("aliases", ", ".join(result.old.aliases), ", ".join(result.new.aliases)),
        ],
    )
    click.echo("")
    if not result.metrics:
        click.echo("neither version's run has metrics")
        return
    table(
        ("metric", f"v{old}", f"v{new}", "delta", "change"),
        [
            (
                row.metric,
                number(row.old) if row.old is not None else "missing",
                number(row.new) if row.new is not None else "missing",
                signed(row.delta),
                row.change.value,
            )
            for row in result.metrics
        ],
    )


def _finite(value: float | None) -> float | str | None:
    # JSON has no NaN: say it in words rather than print invalid JSON.
    return "nan" if value is not None and math.isnan(value) else value


@click.group()
def alias() -> None:
    """Set or delete a registered model's aliases by hand."""


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=VERSION)
@JSON_OPTION
@policy_option
@friendly_errors
def alias_set(name: str, alias_name: str, version: int, as_json: bool) -> None:
    """Point ALIAS at VERSION, backwards too.

    Setting the champion alias records the previous champion, so `regpilot rollback` can
    restore it.
    """
    from regpilot.cli.registry_session import open_model
    from regpilot.core.naming import alias_problem
    from regpilot.workflows.aliases import set_alias_by_hand

    problem = alias_problem(alias_name)
    if problem:
        raise click.BadParameter(problem, param_hint="ALIAS")
    ctx, full = open_model(name, "alias set", writes=True)
    with ctx.lock(full):
        previous = set_alias_by_hand(ctx, full, alias_name, version)
    changed = previous != version
    if as_json:
        emit_json(
            {
                "name": full,
                "alias": alias_name,
                "version": version,
                "previous": previous,
                "changed": changed,
            }
        )
    elif not changed:
        click.echo(f"{full}@{alias_name} already points at version {version}")
    else:
        was = f" (was version {previous})" if previous is not None else ""
        click.echo(f"{full}@{alias_name} -> version {version}{was}")


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@JSON_OPTION
@policy_option
@friendly_errors
def alias_delete(name: str, alias_name: str, as_json: bool) -> None:
    """Remove ALIAS from the model."""
    from regpilot.cli.registry_session import open_model
    from regpilot.workflows.aliases import delete_alias_by_hand

    ctx, full = open_model(name, "alias delete", writes=True)
    with ctx.lock(full):
        version = delete_alias_by_hand(ctx, full, alias_name)
    if as_json:
        emit_json({"name": full, "alias": alias_name, "deleted_from": version})
    else:
        click.echo(f"deleted {full}@{alias_name} (it pointed at version {version})")


@click.command()
@click.argument("name")
@click.argument("version", type=VERSION)
@click.argument(
    "stage", type=click.Choice(["None", "Staging", "Production", "Archived"], case_sensitive=False)
)
@click.option(
    "--archive-existing",
    is_flag=True,
    help="Archive the versions currently in STAGE (Staging/Production only).",
)
@JSON_OPTION
@policy_option
@friendly_errors
def transition(name: str, version: int, stage: str, archive_existing: bool, as_json: bool) -> None:
    """Move VERSION to a legacy stage. Unity Catalog has none: use `regpilot alias` there."""
    from regpilot.cli.registry_session import open_model, require_store
    from regpilot.workflows.governance import transition as move_stage

    ctx, full = open_model(name, "transition", writes=False)
    if ctx.registry.capabilities.supports_stages:  # on Unity Catalog it is refused before any call
        ctx.store = require_store(ctx.settings, "transition")
    with ctx.lock(full):
        before, after = move_stage(ctx, full, version, stage, archive_existing=archive_existing)
    if as_json:
        emit_json(
            {
                "name": full,
                "version": version,
                "stage": after.stage,
                "previous": before.stage,
                "archive_existing": archive_existing,
            }
        )
    else:
        click.echo(
            f"{full} version {version}: {before.stage or 'None'} -> {after.stage or 'None'}"
            + (" (existing versions in that stage archived)" if archive_existing else "")
        )


@click.command()
@click.argument("name")
@JSON_OPTION
@policy_option
@friendly_errors
def rollback(name: str, as_json: bool) -> None:
    """Give `champion` back to the previous champion (recorded when it was promoted)."""
    from regpilot.cli.registry_session import open_model
    from regpilot.workflows.aliases import rollback as roll_back

    ctx, full = open_model(name, "rollback", writes=True)
    with ctx.lock(full):
        demoted, restored = roll_back(ctx, full)
    champion = ctx.policy.for_model(full).aliases.champion
    if as_json:
        emit_json({"name": full, "alias": champion, "version": restored, "previous": demoted})
    else:
        click.echo(f"{full}@{champion} -> version {restored} (rolled back from version {demoted})")


COMMANDS: tuple[Any, ...] = (register_model, details, compare, alias, transition, rollback)
