"""`cascade transform`: dbt build of bronze, silver and gold on the lake."""

from __future__ import annotations

import click

from cascade.cli.common import (
    check_order,
    console,
    end_option,
    load_settings,
    out,
    reported,
    start_option,
    verbose_option,
)


@click.command()
@start_option("First local day (YYYY-MM-DD) incremental models rebuild; default: all.")
@end_option()
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@verbose_option
def transform(start, end, full_refresh: bool, verbose: bool) -> None:
    """dbt build: bronze → silver → gold (with tests) on the lake."""
    from cascade.transform import run_transform

    check_order(start, end)
    settings = load_settings()
    with reported(settings, "transform", verbose), console.status("dbt build ..."):
        result = run_transform(settings, start, end, full_refresh)
    out.print(result.summary(), highlight=False)
