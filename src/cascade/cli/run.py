"""`cascade run` and `cascade backfill`: Dagster jobs over a range of local days."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.table import Table

from cascade.cli.common import (
    CascadeError,
    console,
    day_range,
    describe_days,
    end_option,
    load_settings,
    out,
    reported,
    start_option,
    verbose_option,
)
from cascade.settings import Settings

SITE_ERROR = re.compile(r"[\w.]*NightscoutError: ")


@contextmanager
def nightscout_site(settings: Settings) -> Iterator[tuple[str, str]]:
    """(url, subject) of the configured site, or of a demo server started for the duration."""
    if settings.nightscout_url:
        yield settings.nightscout_url, settings.subject_id or ""
        return
    from cascade.demo.server import DemoServer

    with DemoServer() as server:
        console.print(f"no CASCADE_NIGHTSCOUT_URL: serving demo data on {server.url}")
        yield server.url, settings.subject_id or "demo"


def print_layer_counts(settings: Settings) -> None:
    """Rows of every table in raw, bronze, silver and gold."""
    from cascade.lake.connection import connect

    table = Table(title=f"{settings.lake_alias} tables", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    with connect(settings, read_only=True) as con:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = ? and table_schema in ('raw', 'bronze', 'silver', 'gold') "
            "order by case table_schema when 'raw' then 1 when 'bronze' then 2 "
            "when 'silver' then 3 else 4 end, table_name",
            [settings.lake_alias],
        ).fetchall()
        for schema, name in names:
            if name.startswith("_dlt"):
                continue
            rows = con.execute(f'select count(*) from {schema}."{name}"').fetchone()[0]
            table.add_row(f"{schema}.{name}", f"{rows:,}")
    out.print(table)


def print_pipeline_summary(result) -> None:
    """Assets materialised with their rows, then checks passed and failed."""
    table = Table(title="materialized", title_justify="left")
    table.add_column("asset")
    table.add_column("rows", justify="right")
    table.add_column("status")
    for key, meta in result.materialized.items():
        rows = meta.get("rows_fetched", meta.get("rows_affected", ""))
        table.add_row(key, f"{rows:,}" if isinstance(rows, int) else "", meta.get("status", "ok"))
    out.print(table)
    failed = [name for name, passed in result.checks.items() if not passed]
    out.print(
        f"{len(result.materialized)} assets · {len(result.checks) - len(failed)} checks passed, "
        f"{len(failed)} failed · {result.seconds:.1f} s",
        highlight=False,
    )
    for name in failed:
        console.print(f"[red]check failed:[/red] {name}", highlight=False)


def failure_line(failures: list[str]) -> str:
    """Failed steps (`step: Error: message`) as one line: each message once, with its steps.

    A Nightscout site's error reads as one: the site (no query, no token), what failed, what to
    check; it is the same for every raw asset that fetched from the site.
    """
    steps: dict[str, list[str]] = {}
    for failure in failures:
        step, _, message = failure.partition(": ")
        message = SITE_ERROR.sub("Nightscout site ", message) if message else step
        steps.setdefault(message, []).append(step)
    lines = [f"{message} (step {', '.join(names)})" for message, names in steps.items()]
    return "; ".join(lines) or "the run failed"


@click.command()
@start_option("First local day (YYYY-MM-DD); default --days before --end.")
@end_option("Day after the last (exclusive); default tomorrow, so today is the last day.")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=14,
    show_default=True,
    help="How many days when --start is not given.",
)
@verbose_option
def run(start, end, days: int, verbose: bool) -> None:
    """The main job: Nightscout → raw → bronze → silver → gold through Dagster, in-process.

    Without CASCADE_NIGHTSCOUT_URL it serves demo data on a local port for the run, and
    writes the AGP report to reports/.
    """
    settings = load_settings()
    first, last = day_range(settings, start, end, days)
    from cascade.defs.runners import run_pipeline  # slow to import: after the options are checked

    with reported(settings, "run", verbose):
        with nightscout_site(settings) as (url, subject):
            console.print(
                f"running nightscout_pipeline on the {settings.profile} lake for "
                f"{describe_days(settings, first, last)}",
                highlight=False,
            )
            result = run_pipeline(
                settings,
                first,
                last,
                nightscout_url=url,
                subject_id=subject or None,
                verbose=verbose,
            )
        print_pipeline_summary(result)
        if not result.success:
            raise CascadeError(settings.redact(failure_line(result.failures)))
        print_layer_counts(settings)
        from cascade.report.build import write_report

        files = write_report(
            settings, Path("reports"), subject or None, days=(last - first).days + 1
        )
        paths = [path.absolute() for path in (files.html, files.png, files.pdf) if path]
        out.print("AGP report: " + "\n            ".join(map(str, paths)), highlight=False)


@click.command()
@start_option("First local day (YYYY-MM-DD).", required=True)
@end_option(required=True)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Ranged runs at once (the local profile queues them on its writer lock).",
)
@verbose_option
def backfill(start, end, concurrency: int, verbose: bool) -> None:
    """Materialise a range of daily partitions as a few ranged runs, `concurrency` at a time."""
    settings = load_settings()
    first, last = day_range(settings, start, end, 1)
    from cascade.defs.runners import run_backfill

    with reported(settings, "backfill", verbose), nightscout_site(settings) as (url, subject):
        console.print(
            f"backfilling the {settings.profile} lake for {describe_days(settings, first, last)}",
            highlight=False,
        )
        report = run_backfill(settings, first, last, concurrency, url, subject or None)
    out.print(report.describe(), highlight=False)
    if report.failures:
        raise CascadeError(settings.redact(failure_line(report.failures)))
