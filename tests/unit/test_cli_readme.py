"""The README's command table and the `cascade` command agree, both ways."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cascade.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"
OPTION = re.compile(r"--[a-z][a-z-]*")


def readme_rows() -> dict[tuple[str, ...], set[str]]:
    """(command path) -> options named in its row of the "## Commands" table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, ...], set[str]] = {}
    for line in section.splitlines():
        match = re.match(r"\| `cascade ([^`]*)`", line)
        if not match:
            continue
        usage = match[1]
        words = []
        for word in usage.split():
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        rows.setdefault(tuple(words), set()).update(OPTION.findall(usage))  # a form per row
    return rows


def cli_commands() -> dict[tuple[str, ...], set[str]]:
    """(command path) -> its options, for every command that does something (no groups)."""
    found: dict[tuple[str, ...], set[str]] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))
            return
        found[path] = {
            opt
            for param in command.params
            if isinstance(param, click.Option)
            for opt in param.opts
            if opt.startswith("--")
        }

    walk(main, ())
    return found


ROWS = readme_rows()


def test_the_table_is_found():
    assert ("run",) in ROWS and ("ingest",) in ROWS


@pytest.mark.parametrize("path", sorted(ROWS), ids=" ".join)
def test_every_readme_command_and_option_exists(path: tuple[str, ...]):
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="cascade")
    assert result.exit_code == 0, f"cascade {' '.join(path)}: {result.output}"
    missing = sorted(ROWS[path] - cli_commands()[path])
    assert not missing, f"README names options `cascade {' '.join(path)}` lacks: {missing}"


def test_every_command_and_option_is_in_the_readme():
    for path, options in cli_commands().items():
        assert path in ROWS, f"`cascade {' '.join(path)}` is not in the README's command table"
        undocumented = sorted(options - ROWS[path] - {"--help"})
        assert not undocumented, f"README lacks `cascade {' '.join(path)}` {undocumented}"
