"""The `cascade` command."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
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


@contextmanager
def logged_to_file(settings: Settings, command: str, verbose: bool) -> Iterator[Path]:
    """Full detail of a run (dlt's log, a failure's traceback) in CASCADE_HOME/logs/<command>.log.

    Expected faults then print one line on stderr and no tracebacks; `--verbose` prints dlt's
    log on stderr as well.
    """
    import logging

    import dlt

    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{command}.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("cascade.cli")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    if not verbose:
        dlt.config["runtime.log_level"] = "CRITICAL"
    try:
        yield path
    except Exception:
        logger.exception(f"{command} failed")
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()


def print_ingest_summary(result) -> None:
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
@click.option("--verbose", is_flag=True, help="Print dlt's log too (always in CASCADE_HOME/logs).")
def ingest(start, end, url, file_, subject, utc_offset, verbose) -> None:
    """Load Nightscout entries, treatments, devicestatus and profile into <lake>.raw."""
    from cascade.ingest import ingest_file, ingest_site
    from cascade.sources.nightscout.helpers import Window

    settings = load_settings()
    if url and file_:
        raise click.UsageError("pass either --url or --file, not both")
    with reported(settings), logged_to_file(settings, "ingest", verbose):
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


def parse_day(value: str | None) -> date | None:
    """A YYYY-MM-DD option as a date."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def day_range(
    settings: Settings, start: str | None, end: str | None, days: int
) -> tuple[date, date]:
    """(first, last) local days of a run: --start/--end (end exclusive) or the last `days`."""
    from cascade.pipeline import last_days

    first, last = last_days(settings, days)
    first = parse_day(start) or first
    if end is not None:
        last = parse_day(end) - timedelta(days=1)
    if last < first:
        raise click.BadParameter(f"--end must be after --start ({start} .. {end})")
    return first, last


def print_pipeline_summary(result) -> None:
    table = Table(title="materialized", title_justify="left")
    for column in ("asset", "rows", "status"):
        table.add_column(column)
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


@main.command()
@click.option("--start", help="First local day (YYYY-MM-DD); default 14 days ago.")
@click.option("--end", help="Day after the last (exclusive); default tomorrow.")
@click.option("--days", type=int, default=14, show_default=True, help="Days up to today.")
def run(start: str | None, end: str | None, days: int) -> None:
    """The main job: Nightscout → raw → bronze → silver → gold through Dagster, in-process.

    Without CASCADE_NIGHTSCOUT_URL it serves demo data on a local port for the run.
    """
    from cascade.pipeline import run_pipeline

    settings = load_settings()
    with reported(settings):
        first, last = day_range(settings, start, end, days)
        with nightscout_site(settings) as (url, subject):
            console.print(
                f"running nightscout_pipeline for {first} .. {last} ({settings.profile} lake)"
            )
            result = run_pipeline(
                settings, first, last, nightscout_url=url, subject_id=subject or None
            )
        print_pipeline_summary(result)
        if not result.success:
            raise CascadeError(settings.redact("; ".join(result.failures) or "the run failed"))
        print_layer_counts(settings)
        from cascade.report.build import write_report

        files = write_report(
            settings, Path("reports"), subject or None, days=(last - first).days + 1
        )
        out.print(f"AGP report: {files.html.absolute()}\n            {files.png.absolute()}")


@main.command()
@click.option("--start", help="First local day (YYYY-MM-DD); default: the whole record.")
@click.option("--end", help="Day after the last (exclusive).")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
def transform(start: str | None, end: str | None, full_refresh: bool) -> None:
    """dbt build: bronze → silver → gold (with tests) on the lake."""
    from cascade.transform import run_transform

    settings = load_settings()
    with reported(settings), console.status("dbt build ..."):
        result = run_transform(settings, parse_day(start), parse_day(end), full_refresh)
    out.print(result.summary(), highlight=False)


@main.command()
@click.option("--start", required=True, help="First local day (YYYY-MM-DD).")
@click.option("--end", required=True, help="Day after the last (exclusive).")
@click.option(
    "--concurrency",
    type=int,
    default=1,
    show_default=True,
    help="Ranged runs at once (the local profile queues them on its writer lock).",
)
def backfill(start: str, end: str, concurrency: int) -> None:
    """Materialise a range of daily partitions as a few ranged runs, `concurrency` at a time."""
    from cascade.backfill import run_backfill

    settings = load_settings()
    with reported(settings):
        first, last = day_range(settings, start, end, 1)
        with nightscout_site(settings) as (url, subject):
            report = run_backfill(settings, first, last, concurrency, url, subject or None)
    out.print(report.describe(), highlight=False)
    if report.failures:
        raise CascadeError(settings.redact("; ".join(report.failures)))


@main.command()
def dev() -> None:
    """The Dagster UI (dagster dev) with an instance under CASCADE_HOME sized for this lake."""
    import os

    from cascade.pipeline import prepare_dagster_home

    settings = load_settings()
    home = prepare_dagster_home(settings)
    console.print(f"DAGSTER_HOME={home}")
    dagster = str(Path(sys.executable).parent / "dagster")
    os.execve(
        dagster,
        [dagster, "dev", "-m", "cascade.definitions"],
        {**os.environ, "DAGSTER_HOME": str(home)},
    )


@main.command("demo-server")
@click.option("--port", type=int, default=1337, show_default=True)
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


def _register_commands() -> None:
    """Commands that live with their feature; imported lazily by their own modules."""
    from cascade.ops_cli import health, maintain
    from cascade.report.cli import report

    for command in (health, maintain, report):
        main.add_command(command)


_register_commands()

if __name__ == "__main__":
    main()
