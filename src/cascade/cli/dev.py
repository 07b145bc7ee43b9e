"""`cascade dev`: the Dagster UI over cascade's definitions."""

from __future__ import annotations

import sys

import click

from cascade.cli.common import console, load_settings


@click.command()
@click.option(
    "--port", type=click.IntRange(1, 65535), default=3000, show_default=True, help="UI port."
)
def dev(port: int) -> None:
    """The Dagster UI (dagster dev) with an instance under CASCADE_HOME sized for this lake.

    Without CASCADE_NIGHTSCOUT_URL a demo Nightscout server runs beside it, as for `cascade run`.
    """
    from cascade.defs import runners

    settings = load_settings()
    console.print(f"Dagster UI on http://127.0.0.1:{port}", highlight=False)
    sys.exit(runners.dev(settings, port) or 0)
