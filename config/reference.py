"""Generate the README's configuration reference from Settings, so the two cannot drift.

`python -m config.reference` prints the table; `--write README.md` replaces the table between
the markers in place; `--check README.md` exits 1 when the README is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from config.settings import Settings, env_name

START = "<!-- config-reference:start (python -m config.reference --write README.md) -->"
END = "<!-- config-reference:end -->"
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def _default(info: FieldInfo) -> str:
    value: Any = info.get_default(call_default_factory=True)
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path) and value.is_absolute():
        try:
            value = value.relative_to(_PACKAGE_ROOT)
        except ValueError:
            pass
    return f"`{value}`" if str(value) != "" else '`""`'


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _choices(info: FieldInfo) -> str:
    if get_origin(info.annotation) is Literal:
        return " One of " + ", ".join(f"`{choice}`" for choice in get_args(info.annotation)) + "."
    return ""


def table() -> str:
    """Return the Markdown table: variable, default, meaning, one row per setting."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        secret = " (secret)" if "SecretStr" in str(info.annotation) else ""
        meaning = _cell(info.description or "") + _choices(info) + secret
        rows.append(f"| `{env_name(name)}` | {_default(info)} | {meaning} |")
    return "\n".join(rows)


def replace_block(text: str, generated: str) -> str:
    """Return `text` with the generated table between the markers; ValueError without them."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"markers not found: add the lines\n{START}\n{END}")
    return text[: start + len(START)] + "\n" + generated + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the configuration reference."""
    parser = argparse.ArgumentParser(prog="python -m config.reference", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="FILE", help="update the table in FILE")
    group.add_argument("--check", type=Path, metavar="FILE", help="fail if FILE is out of date")
    args = parser.parse_args(argv)
    generated = table()
    target: Path | None = args.write or args.check
    if target is None:
        print(generated)
        return 0
    try:
        current = target.read_text(encoding="utf-8")
        updated = replace_block(current, generated)
    except (OSError, ValueError) as exc:
        print(f"{target}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if updated != current:
            print(
                f"{target}: configuration reference is out of date; run {parser.prog} "
                f"--write {target}",
                file=sys.stderr,
            )
            return 1
        return 0
    target.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
