"""The `cascade` command: one group, one module per command group, loaded when used.

`common` holds what every command shares (settings, dates, durations, error output).
"""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute"; a module is imported only when its command is used
COMMANDS = {
    "run": "cascade.cli.run:run",
    "backfill": "cascade.cli.run:backfill",
    "ingest": "cascade.cli.ingest:ingest",
    "transform": "cascade.cli.transform:transform",
    "report": "cascade.cli.report:report",
    "health": "cascade.cli.ops:health",
    "maintain": "cascade.cli.ops:maintain",
    "docs": "cascade.cli.docs:docs",
    "env": "cascade.cli.docs:env",
    "dev": "cascade.cli.dev:dev",
    "demo-server": "cascade.cli.demo:demo_server",
    "sites": "cascade.sites.commands:sites",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported from COMMANDS on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup)
def main() -> None:
    """cascade: Nightscout CGM data into a DuckLake lakehouse."""
