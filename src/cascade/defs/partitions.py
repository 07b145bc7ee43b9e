"""Daily partitions in the subject's timezone, ranged runs, and how a range becomes a window."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from cascade.settings import Settings
from cascade.sources.nightscout.helpers import Window

LAKE_POOL = "lake_writers"
# Days one ranged ingestion run covers at most: a year backfills in four runs, not 365.
BACKFILL_CHUNK_DAYS = 92
# Dagster's documented run tags for a run over a range of partitions.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# On a dbt run after a run of the sites job: that run's id. dbt then reads and replaces only
# the rows of the subjects it loaded (defs.transform.run_subjects).
AFTER_SITES_RUN_TAG = "cascade/after_sites_run"


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per local day from CASCADE_START_DATE; today's partition exists already."""
    return dg.DailyPartitionsDefinition(
        start_date=str(settings.start_date), timezone=settings.timezone, end_offset=1
    )


def ingestion_backfill_policy() -> dg.BackfillPolicy:
    """Raw tables backfill in ranged runs of BACKFILL_CHUNK_DAYS days."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=BACKFILL_CHUNK_DAYS)


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run cover the daily partitions first..last (inclusive)."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


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


# Registered sites as Dagster partitions, kept in sync with `ops.sites` by a sensor. Raw
# ingestion of many sites is partitioned by site alone (its window comes from each site's
# high-water mark), dbt by day alone: 1,000 sites and 3 years stay ~1,000 + ~1,100 keys.
SITES = dg.DynamicPartitionsDefinition(name="sites")


def site_partition_changes(registered: list[str], existing: list[str]) -> tuple[list, list]:
    """(keys to add, keys to delete) that make the `sites` partitions the active sites."""
    wanted, present = set(registered), set(existing)
    return [k for k in registered if k not in present], [k for k in existing if k not in wanted]


def sites_range_tags(keys: list[str]) -> dict[str, str]:
    """Tags of one run over every site partition (dynamic keys keep their insertion order)."""
    return {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}


def touched_range(days: Iterable[tuple[str, str]], settings: Settings) -> tuple[date, date] | None:
    """The daily partitions covering every (first, last) day a site load touched, widened by
    a day each side (a site's own zone may differ from CASCADE_TIMEZONE), within the partitions."""
    days = list(days)
    if not days:
        return None
    first = min(date.fromisoformat(a) for a, _ in days) - timedelta(days=1)
    last = max(date.fromisoformat(b) for _, b in days) + timedelta(days=1)
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    return max(first, date.fromisoformat(settings.start_date)), min(last, today)
