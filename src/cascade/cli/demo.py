"""`cascade demo-server`: a Nightscout-compatible API with generated data."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo-server")
@click.option("--port", type=click.IntRange(0, 65535), default=1337, show_default=True)
@click.option("--api-secret", default=None, help="Require this API secret (sent as SHA-1).")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve a Nightscout JSON export or an iglu CSV instead of generated data.",
)
@click.option(
    "--uploader",
    type=click.Choice(["default", "loop", "trio", "aaps", "xdrip"]),
    default="default",
    show_default=True,
    help="Whose uploads the generated data imitates (shapes, duplicates, time zone).",
)
def demo_server(port: int, api_secret: str | None, file_: Path | None, uploader: str) -> None:
    """A Nightscout-compatible API on 127.0.0.1 with realistic generated data."""
    from cascade.demo.server import main as serve

    serve(port, api_secret, file_, uploader)
