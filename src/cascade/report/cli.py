"""`cascade report`: the AGP report of one subject as an HTML page and a PNG."""

from __future__ import annotations

from pathlib import Path

import click

from .units import UNITS

DATE = click.DateTime(formats=["%Y-%m-%d"])


@click.command("report")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    help="The last N days, ending at the subject's last day with data (default 14).",
)
@click.option("--start", type=DATE, help="First local day (YYYY-MM-DD).")
@click.option("--end", type=DATE, help="Local day after the last (exclusive).")
@click.option("--subject", help="Whose report (default: the only subject in the lake).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder for the HTML page and the PNG.",
)
@click.option(
    "--units",
    type=click.Choice(UNITS),
    help="Glucose units (default CASCADE_GLUCOSE_UNITS, else mg/dL).",
)
def report(days, start, end, subject, out, units) -> None:
    """The Ambulatory Glucose Profile report from the gold marts (HTML + PNG)."""
    from cascade.cli import load_settings

    from .build import write_report
    from .data import ReportError
    from .units import Units

    settings = load_settings()
    try:
        files = write_report(
            settings,
            out,
            subject=subject,
            days=days,
            start=start.date() if start else None,
            end=end.date() if end else None,
            units=Units(units) if units else None,
        )
    except ReportError as exc:
        raise click.ClickException(settings.redact(str(exc))) from None
    click.echo(files.html.absolute())
    click.echo(files.png.absolute())


if __name__ == "__main__":
    report()
