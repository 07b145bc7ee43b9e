"""The `cascade` command."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cascade.settings import Settings

console = Console(stderr=True)
out = Console()


class CascadeError(click.ClickException):
    """A failure reported as one clean, redacted line and exit code 1."""

    def show(self, file=None) -> None:
        console.print(f"[red]error:[/red] {self.message}", highlight=False)


def load_settings() -> Settings:
    """Settings from the environment, with validation errors turned into one clear line."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise CascadeError(f"invalid configuration: {problems}") from None


@contextmanager
def reported(settings: Settings) -> Iterator[None]:
    """Turn expected failures into a redacted one-line error and a non-zero exit."""
    try:
        yield
    except click.ClickException:
        raise
    except KeyboardInterrupt:
        raise CascadeError("interrupted") from None
    except Exception as exc:  # noqa: BLE001 - every failure must leave redacted
        raise CascadeError(settings.redact(f"{exc}")) from None


def parse_moment(value: str | None, tz: str) -> datetime | None:
    """A date (midnight in `tz`) or an ISO datetime (naive means `tz`) as an aware datetime."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or ISO datetime") from None
    if len(value) <= 10:
        parsed = datetime.combine(parsed.date(), time.min)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(tz))


def default_window(settings: Settings, days: int) -> tuple[datetime, datetime]:
    """The last `days` local days including today, ending at tomorrow's local midnight."""
    tz = ZoneInfo(settings.timezone)
    tomorrow = datetime.now(tz).date() + timedelta(days=1)
    end = datetime.combine(tomorrow, time.min, tzinfo=tz)
    return end - timedelta(days=days), end


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
    table = Table(title="ingest summary", title_justify="left")
    for column in ("table", "loaded", "inserted", "updated"):
        table.add_column(column, justify="right" if column != "table" else "left")
    for name, counts in sorted(result.tables.items()):
        table.add_row(name, f"{counts.loaded:,}", f"{counts.inserted:,}", f"{counts.updated:,}")
    out.print(table)
    out.print(result.describe(), highlight=False)


@click.group()
def main() -> None:
    """cascade: Nightscout CGM data into a DuckLake lakehouse."""


@main.command()
@click.option("--start", help="First day (YYYY-MM-DD, local) or ISO datetime; default 14 days ago.")
@click.option("--end", help="Day after the last (exclusive); default tomorrow.")
@click.option("--url", help="Nightscout site (default CASCADE_NIGHTSCOUT_URL).")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Nightscout JSON export or an iglu CSV (id,time,gl) instead of a site.",
)
@click.option("--subject", help="Subject key for a site (default CASCADE_SUBJECT_ID or its host).")
@click.option(
    "--utc-offset",
    type=int,
    default=0,
    show_default=True,
    help="Minutes from UTC of a CSV's wall-clock times (e.g. -300 for UTC-5).",
)
def ingest(start, end, url, file_, subject, utc_offset) -> None:
    """Load Nightscout entries, treatments, devicestatus and profile into <lake>.raw."""
    from cascade.ingest import ingest_file, ingest_site
    from cascade.sources.nightscout.helpers import Window

    settings = load_settings()
    if url and file_:
        raise click.UsageError("pass either --url or --file, not both")
    with reported(settings):
        begin, finish = parse_moment(start, settings.timezone), parse_moment(end, settings.timezone)
        with page_progress() as on_page:
            if file_:
                window = None
                if begin or finish:
                    window = Window(
                        begin or datetime(1970, 1, 1, tzinfo=UTC),
                        finish or datetime(2100, 1, 1, tzinfo=UTC),
                    )
                result = ingest_file(settings, file_, window, utc_offset, on_page=on_page)
            else:
                default_start, default_end = default_window(settings, 14)
                window = Window(begin or default_start, finish or default_end)
                result = ingest_site(settings, window, url, subject, on_page=on_page)
    print_ingest_summary(result)


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


@main.command()
@click.option("--days", type=int, default=14, show_default=True, help="Days up to today.")
def run(days: int) -> None:
    """The main job: ingest the last days from Nightscout (a demo site if none is set)."""
    from cascade.ingest import ingest_site
    from cascade.sources.nightscout.helpers import Window

    settings = load_settings()
    with reported(settings):
        with nightscout_site(settings) as (url, subject), page_progress() as on_page:
            window = Window(*default_window(settings, days))
            result = ingest_site(settings, window, url, subject or None, on_page=on_page)
        print_ingest_summary(result)
        print_layer_counts(settings)


@main.command("demo-server")
@click.option("--port", type=int, default=1337, show_default=True)
@click.option("--api-secret", default=None, help="Require this API secret (sent as SHA-1).")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Serve a Nightscout JSON export or an iglu CSV instead of generated data.",
)
def demo_server(port: int, api_secret: str | None, file_: Path | None) -> None:
    """A Nightscout-compatible API on 127.0.0.1 with realistic generated data."""
    from cascade.demo.server import main as serve

    serve(port, api_secret, file_)


if __name__ == "__main__":
    main()
