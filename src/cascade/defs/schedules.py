"""Schedules: the hourly raw-to-gold run and the weekly lake maintenance."""

from datetime import timedelta

import dagster as dg

from cascade.defs.jobs import hourly
from cascade.defs.maintenance import lake_maintenance
from cascade.defs.partitions import partition_range_tags


def build_schedules(timezone: str) -> list[dg.ScheduleDefinition]:
    """Both schedules, on the subject's clock."""

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

    weekly_maintenance = dg.ScheduleDefinition(
        job=lake_maintenance, cron_schedule="30 3 * * 0", execution_timezone=timezone
    )
    return [hourly_ingest, weekly_maintenance]
