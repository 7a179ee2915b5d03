"""The `regpilot` command: the service's parts, the local stack, and the registry commands."""

from __future__ import annotations

import click

from regpilot.cli.doctor import doctor
from regpilot.cli.explain_cmd import explain
from regpilot.cli.governance_cmds import COMMANDS as GOVERNANCE_COMMANDS
from regpilot.cli.local import demo, up
from regpilot.cli.notify_cmd import notify_run_cmd
from regpilot.cli.ops_cmds import ops, reconcile
from regpilot.cli.policy_cmds import COMMANDS as POLICY_COMMANDS
from regpilot.cli.registry_cmds import COMMANDS as REGISTRY_COMMANDS
from regpilot.cli.service import beat, serve, worker
from regpilot.cli.webhooks import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="regpilot")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """regpilot: an MLflow model registry on autopilot."""
    ctx.obj = {"debug": debug}


for command in (serve, worker, beat, up, demo, notify_run_cmd, webhooks):
    main.add_command(command)

for command in (ops, reconcile, doctor, explain):
    main.add_command(command)

for command in (*REGISTRY_COMMANDS, *GOVERNANCE_COMMANDS, *POLICY_COMMANDS):
    main.add_command(command)


if __name__ == "__main__":
    main()
