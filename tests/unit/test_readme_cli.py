"""Every `regpilot ...` line the README shows is a command line the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from regpilot.cli.main import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.S)
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
# What a placeholder stands for when its parameter needs a particular value.
EXAMPLES = {"STAGE": "Staging", "URL": "http://127.0.0.1:8080/webhooks/mlflow"}


def readme_command_lines() -> list[str]:
    """Return every `regpilot ...` line in the README's code blocks, tables and prose."""
    found = []
    for block in CODE_BLOCK.findall(README):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("regpilot "):
                found.append(re.split(r"\s+#\s", line)[0].strip())
    prose = CODE_BLOCK.sub("", README)
    found += [code for code in re.findall(r"`([^`\n]+)`", prose) if code.startswith("regpilot ")]
    return sorted(set(found))


LINES = readme_command_lines()


def split(line: str) -> tuple[list[str], click.Command, list[str]]:
    """Return the subcommand path, the command, and its arguments with placeholders filled."""
    line = line.replace("\\|", "|")  # a `|` escaped inside a Markdown table cell
    line = re.split(r"\s(?:>|\||&&|&|2>)(?:\s|$)", line + " ")[0]  # the shell's part
    tokens = [
        t.split("|")[0]  # `a|b|c`: alternatives of one value, the first stands for them all
        for t in shlex.split(line.replace("[", " ").replace("]", " "))[1:]
        if t not in {"...", "|"} and not t.endswith("...")
    ]
    path: list[str] = []
    command: click.Command = main
    while tokens and command_option(main, tokens[0]) is not None:  # global options: --debug
        path.append(tokens.pop(0))
    while tokens and isinstance(command, click.Group) and tokens[0] in command.commands:
        path.append(tokens[0])
        command = command.commands[tokens.pop(0)]
    assert command is not main, f"{line!r}: no such regpilot command"
    args = []
    for index, token in enumerate(tokens):
        if not PLACEHOLDER.match(token):
            args.append(token)
            continue
        option = command_option(command, tokens[index - 1]) if index else None
        if option is not None and isinstance(option.type, click.Choice):
            args.append(str(option.type.choices[0]))
        else:
            args.append(EXAMPLES.get(token, "1"))
    return path, command, args


def command_option(command: click.Command, name: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and name in param.opts + param.secondary_opts:
            return param
    return None


def test_the_readme_shows_the_commands_a_user_needs():
    shown = {" ".join(p for p in split(line)[0] if not p.startswith("-")) for line in LINES}
    for needed in ("up", "explain", "history", "ops events", "policy check", "retention"):
        assert needed in shown, f"the README never shows `regpilot {needed}`"


@pytest.mark.parametrize("line", LINES)
def test_every_readme_command_line_parses_with_the_cli(line):
    path, command, args = split(line)
    help_result = CliRunner().invoke(main, [*path, "--help"])
    assert help_result.exit_code == 0, help_result.output
    for token in args:
        if token.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", token):
            name = token.split("=", 1)[0]
            assert command_option(command, name), f"{line!r}: `{name}` is no option of {path}"
    if not args:
        return  # the command named in prose, without its arguments
    try:
        command.make_context(" ".join(["regpilot", *path]), list(args))
    except click.UsageError as exc:
        pytest.fail(f"{line!r} does not parse: {exc.format_message()}")
