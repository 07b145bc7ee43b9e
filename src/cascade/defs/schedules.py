"""Schedules: the hourly raw-to-gold run (the one-site shortcut), the hourly run of every
registered site, and the weekly lake maintenance."""

from datetime import timedelta

import dagster as dg

from cascade.defs.jobs import hourly, sites
from cascade.defs.maintenance import lake_maintenance
from cascade.defs.partitions import SITES, partition_range_tags, sites_range_tags


def build_schedules(timezone: str) -> list[dg.ScheduleDefinition]:
    """The schedules, on the subject's clock."""

    @dg.schedule(job=hourly, cron_schedule="7 * * * *", execution_timezone=timezone)
    def hourly_ingest(context: dg.ScheduleEvaluationContext):
        """Every hour: yesterday and today (late uploads land in yesterday), raw to gold.

        One ranged run: both days are ingested, then dbt rebuilds both days' bronze, silver
        and gold, so a reading uploaded late for yesterday reaches the marts within the hour.
        """
        today = context.scheduled_execution_time.date()
        yesterday = today - timedelta(days=1)
        yield dg.RunRequest(
            run_key=f"{yesterday}..{today}@{context.scheduled_execution_time:%Y%m%d%H}",
            tags=partition_range_tags(yesterday, today),
        )

    @dg.schedule(job=sites, cron_schedule="7 * * * *", execution_timezone=timezone)
    def hourly_sites(context: dg.ScheduleEvaluationContext):
        """Every hour: every registered site, each from its own high-water mark, in one run
        and one dlt load; `dbt_after_sites` then rebuilds the days that run touched."""
        keys = SITES.get_partition_keys(dynamic_partitions_store=context.instance)
        if not keys:
            return dg.SkipReason("no sites registered (cascade sites add)")
        return dg.RunRequest(
            run_key=f"sites@{context.scheduled_execution_time:%Y%m%d%H}",
            tags=sites_range_tags(keys),
        )

    weekly_maintenance = dg.ScheduleDefinition(
        job=lake_maintenance, cron_schedule="30 3 * * 0", execution_timezone=timezone
    )
    return [hourly_ingest, hourly_sites, weekly_maintenance]
