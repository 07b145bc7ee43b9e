"""`cascade dev`: the Dagster UI over cascade's definitions."""

from __future__ import annotations

import click

from cascade.cli.common import console, load_settings


@click.command()
@click.option(
    "--port", type=click.IntRange(1, 65535), default=3000, show_default=True, help="UI port."
)
def dev(port: int) -> None:
    """The Dagster UI (dagster dev) with an instance under CASCADE_HOME sized for this lake."""
    from cascade.defs import runners

    settings = load_settings()
    console.print(f"Dagster UI on http://127.0.0.1:{port}", highlight=False)
    runners.dev(settings, port)
