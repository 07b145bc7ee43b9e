"""`cascade report`: the AGP report of one subject (HTML, PNG, PDF) from the gold marts."""

from __future__ import annotations

from pathlib import Path

import click

from cascade.cli.common import (
    check_order,
    end_option,
    load_settings,
    reported,
    start_option,
    verbose_option,
)
from cascade.report.units import UNITS


@click.command("report")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    help="The last N days, ending at the subject's last day with data (default 14).",
)
@start_option("First local day (YYYY-MM-DD).")
@end_option("Local day after the last (exclusive).")
@click.option("--subject", help="Whose report (default: the only subject in the lake).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder for the HTML page, the PNG and the PDF.",
)
@click.option(
    "--units",
    type=click.Choice(UNITS),
    help="Glucose units (default CASCADE_GLUCOSE_UNITS, else mg/dL).",
)
@verbose_option
def report(days, start, end, subject, out, units, verbose) -> None:
    """The Ambulatory Glucose Profile report from the gold marts (HTML, PNG and PDF)."""
    from cascade.report.build import write_report
    from cascade.report.units import Units

    check_order(start, end)
    settings = load_settings()
    with reported(settings, "report", verbose):
        files = write_report(
            settings,
            out,
            subject=subject,
            days=days,
            start=start,
            end=end,
            units=Units(units) if units else None,
        )
    for path in (files.html, files.png, files.pdf):
        if path is not None:
            click.echo(path.absolute())
