"""Generates the README's CLI reference from the commands' own --help, so the two cannot drift apart.

    python tools/cli_reference.py          # print the reference
    python tools/cli_reference.py --write  # rewrite it in README.md between the markers
(tests/test_docs.py fails when README.md and the commands disagree.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cli  # noqa: E402

START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name in sorted(group.commands):
        command = group.commands[name]
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))


def reference() -> str:
    parts = []
    for path, command in _commands(cli.main):
        full = " ".join(("ccsync", *path))
        # the same help options as the running CLI (main's context_settings), whatever ran before
        ctx = click.Context(command, info_name=full, terminal_width=100, max_content_width=100,
                            help_option_names=cli.main.context_settings["help_option_names"])
        text = command.get_help(ctx)
        parts.append(f"#### `{full}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def replaced(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n\n{reference()}\n{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        README.write_text(replaced(README.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(reference())
