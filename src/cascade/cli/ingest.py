"""`cascade ingest`: a Nightscout site or an export file into <lake>.raw."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cascade.cli.common import (
    MOMENT,
    as_instant,
    check_order,
    console,
    describe_days,
    end_option,
    load_settings,
    out,
    reported,
    start_option,
    today,
    verbose_option,
)
from cascade.settings import Settings

DEFAULT_DAYS = 14
# a file's window when only one side is given: everything on the other side


@contextmanager
def page_progress() -> Iterator[Callable[[str, int], None]]:
    """A live per-collection counter of fetched rows on stderr."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description:<13}"),
        TextColumn("{task.completed:>9,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, int] = {}

        def on_page(collection: str, rows: int) -> None:
            if collection not in tasks:
                tasks[collection] = progress.add_task(collection, total=None)
            progress.advance(tasks[collection], rows)

        yield on_page


def print_ingest_summary(result) -> None:
    """Rows per raw table, then the load's one-line description."""
    table = Table(title="ingest summary", title_justify="left")
    for column in ("table", "loaded", "inserted", "updated"):
        table.add_column(column, justify="right" if column != "table" else "left")
    for name, counts in sorted(result.tables.items()):
        table.add_row(name, f"{counts.loaded:,}", f"{counts.inserted:,}", f"{counts.updated:,}")
    out.print(table)
    out.print(result.describe(), highlight=False)
    unroutable = result.bad_by_collection.get("unroutable", 0)
    if unroutable:
        out.print(
            f"{unroutable:,} records belong to no collection (unroutable): kept in "
            "raw.quarantine, counted in bad records",
            highlight=False,
        )


def site_window(settings: Settings, start, end):
    """The Window of a site's load: --start/--end, else the last 14 local days with today."""
    from cascade.sources.nightscout.helpers import Window

    if end is None:
        end = today(settings) + timedelta(days=1)
        if start is not None and as_instant(start, settings) >= as_instant(end, settings):
            raise click.UsageError(f"--start {start} is after today ({today(settings)})")
    end_at = as_instant(end, settings)
    start_at = (
        as_instant(start, settings) if start is not None else end_at - timedelta(DEFAULT_DAYS)
    )
    return Window(start_at, end_at)


@click.command()
@start_option("First local day (YYYY-MM-DD) or ISO datetime; default 14 days ago.", type=MOMENT)
@end_option("Day (or ISO datetime) after the last, exclusive; default tomorrow.", type=MOMENT)
@click.option("--url", help="Nightscout site (default CASCADE_NIGHTSCOUT_URL).")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, path_type=Path),
    help="A Nightscout export (combined object, bare list of any collections, NDJSON), "
    "a folder of such files, or an iglu CSV (id,time,gl) instead of a site.",
)
@click.option("--subject", help="Subject key for a site (default CASCADE_SUBJECT_ID or its host).")
@click.option(
    "--utc-offset",
    type=int,
    default=0,
    show_default=True,
    help="Minutes from UTC of a CSV's wall-clock times (e.g. -300 for UTC-5).",
)
@verbose_option
def ingest(start, end, url, file_, subject, utc_offset, verbose) -> None:
    """Load Nightscout entries, treatments, devicestatus and profile into <lake>.raw."""
    if url and file_:
        raise click.UsageError("pass either --url or --file, not both")
    settings = load_settings()
    check_order(start, end, key=lambda value: as_instant(value, settings))
    with reported(settings, "ingest", verbose):
        import dlt

        from cascade.ingest import ingest_file, ingest_site
        from cascade.sources.nightscout.helpers import Window

        if not verbose:
            dlt.config["runtime.log_level"] = "CRITICAL"
        if file_:
            window = None
            if start is not None or end is not None:
                open_window = Window.all_time()
                window = Window(
                    as_instant(start, settings) if start is not None else open_window.start,
                    as_instant(end, settings) if end is not None else open_window.end,
                )
            with page_progress() as on_page:
                result = ingest_file(settings, file_, window, utc_offset, on_page=on_page)
        else:
            window = site_window(settings, start, end)
            console.print(f"ingesting {describe_window(settings, window)}", highlight=False)
            with page_progress() as on_page:
                result = ingest_site(settings, window, url, subject, on_page=on_page)
    print_ingest_summary(result)


def describe_window(settings: Settings, window) -> str:
    """The window as local days when it runs midnight to midnight, else as instants."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(settings.timezone)
    start, end = window.start.astimezone(tz), window.end.astimezone(tz)
    if start.time() == end.time() == datetime.min.time():
        first, last = start.date(), end.date() - timedelta(days=1)
        return f"{describe_days(settings, first, last)}, {settings.timezone}"
    return f"{start.isoformat()} .. {end.isoformat()} (end exclusive)"
