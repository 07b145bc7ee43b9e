"""`cascade report`: the AGP report of one subject (HTML, PNG, PDF) from the gold marts, or with
`--cohort` one page ranking every subject by risk, linking to their AGP reports."""

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
@click.option(
    "--cohort",
    is_flag=True,
    help="One page ranking every subject by risk (last 14 days against the 14 before), "
    "linking to each subject's AGP report, written into the same folder.",
)
@click.option(
    "--no-agp",
    "no_agp",
    is_flag=True,
    help="With --cohort: do not write the AGP reports; link those already in --out.",
)
@verbose_option
def report(days, start, end, subject, out, units, cohort, no_agp, verbose) -> None:
    """The Ambulatory Glucose Profile report from the gold marts (HTML, PNG and PDF).

    With --cohort, the cohort review page: everyone ranked by risk, each linking to their AGP
    report of the same 14 days.
    """
    from cascade.report.build import write_report
    from cascade.report.units import Units

    check_order(start, end)
    if no_agp and not cohort:
        raise click.UsageError("--no-agp goes with --cohort")
    if cohort:
        given = [
            name
            for name, value in (
                ("--days", days),
                ("--start", start),
                ("--end", end),
                ("--subject", subject),
            )
            if value is not None
        ]
        if given:
            raise click.UsageError(
                f"--cohort covers every subject's last 14 days: drop {', '.join(given)}"
            )
    settings = load_settings()
    if cohort:
        from cascade.report.cohort import write_cohort

        with reported(settings, "report", verbose):
            files = write_cohort(
                settings, out, agp=not no_agp, units=Units(units) if units else None
            )
        for subject_id, problem in files.problems.items():
            click.echo(f"no AGP report for {subject_id}: {problem}", err=True)
        click.echo(files.html.absolute())
        return
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
