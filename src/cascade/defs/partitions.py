"""Daily partitions in the subject's timezone, and how a partition range becomes a window."""

from __future__ import annotations

from datetime import date

import dagster as dg

from cascade.settings import Settings
from cascade.sources.nightscout.helpers import Window

LAKE_POOL = "lake_writers"


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per local day from CASCADE_START_DATE; today's partition exists already."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.start_date, timezone=settings.timezone, end_offset=1
    )


def backfill_policy(max_partitions_per_run: int = 92) -> dg.BackfillPolicy:
    """A year backfills in about four ranged runs instead of 365 tiny ones."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=max_partitions_per_run)


def partition_window(context: dg.AssetExecutionContext) -> Window:
    """The [start, end) window covering every partition of this run (one or a range)."""
    window = context.partition_time_window
    return Window(window.start, window.end)


def local_dates(window: Window) -> tuple[date, date]:
    """The local first day and the day after the last, as dbt's start_date/end_date vars."""
    return window.start.date(), window.end.date()


def pool_limit(settings: Settings) -> int:
    """Lake writers allowed at once: one on the local (SQLite) profile, more on PostgreSQL."""
    return 1 if settings.profile == "local" else settings.lake_writers
