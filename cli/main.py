"""The `regpilot` command: the service's parts, the local stack, and the registry commands."""

from __future__ import annotations

import click

from cli.governance_cmds import COMMANDS as GOVERNANCE_COMMANDS
from cli.local import demo, up
from cli.notify_cmd import notify_run_cmd
from cli.ops_cmds import ops, reconcile
from cli.policy_cmds import COMMANDS as POLICY_COMMANDS
from cli.registry_cmds import COMMANDS as REGISTRY_COMMANDS
from cli.service import beat, serve, worker
from cli.webhooks import webhooks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="regpilot")
def main() -> None:
    """regpilot: an MLflow model registry on autopilot."""


for command in (serve, worker, beat, up, demo, notify_run_cmd, webhooks):
    main.add_command(command)

for command in (ops, reconcile):
    main.add_command(command)

for command in (*REGISTRY_COMMANDS, *GOVERNANCE_COMMANDS, *POLICY_COMMANDS):
    main.add_command(command)


if __name__ == "__main__":
    main()
