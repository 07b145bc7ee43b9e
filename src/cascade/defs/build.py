"""Assemble cascade's Definitions from the one Settings."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from cascade.defs.checks import readings_unique_and_plausible
from cascade.defs.ingestion import PARTITIONED, build_ingestion_assets, raw_key
from cascade.defs.maintenance import lake_maintenance
from cascade.defs.partitions import backfill_policy, daily_partitions
from cascade.defs.publish import published_marts
from cascade.defs.resources import CascadeResource, hand_over
from cascade.defs.transform import LAYERS, build_dbt_assets, dbt_resource
from cascade.settings import Settings

PIPELINE_JOB = "nightscout_pipeline"
INGEST_JOB = "nightscout_ingest"
REFINE_JOB = "nightscout_refine"
HOURLY_JOB = "nightscout_hourly"


def build_definitions(settings: Settings | None = None, **resource_overrides) -> dg.Definitions:
    """Everything Dagster loads: assets, checks, jobs, the hourly schedule, the dbt sensor.

    Without `settings` they come from the environment when a run starts; with them (the CLI,
    tests) every asset of this process uses exactly that object.
    """
    key = hand_over(settings) if settings is not None else None
    cascade = CascadeResource(settings_key=key, **resource_overrides)
    settings = settings or Settings()
    partitions = daily_partitions(settings)
    # raw tables backfill in parallel ranged runs; dbt then builds the whole range at once
    assets = [
        *build_ingestion_assets(partitions, backfill_policy()),
        build_dbt_assets(partitions, dg.BackfillPolicy.single_run()),
    ]
    if settings.marts_url is not None:
        assets.append(published_marts)

    pipeline = dg.define_asset_job(PIPELINE_JOB, selection=dg.AssetSelection.all())
    ingest = dg.define_asset_job(
        INGEST_JOB, selection=dg.AssetSelection.assets(*(raw_key(c) for c in PARTITIONED))
    )
    # the hourly run ingests and builds downstream in one: late readings of yesterday reach gold
    # although AutomationCondition.eager() only ever rebuilds the latest partition
    hourly = dg.define_asset_job(
        HOURLY_JOB,
        selection=dg.AssetSelection.assets(*(raw_key(c) for c in PARTITIONED))
        | dg.AssetSelection.groups(*LAYERS),
    )
    refine = dg.define_asset_job(
        REFINE_JOB,
        selection=dg.AssetSelection.assets(raw_key("profile"))
        | dg.AssetSelection.groups(*LAYERS, "publish"),
    )

    @dg.schedule(job=hourly, cron_schedule="7 * * * *", execution_timezone=settings.timezone)
    def hourly_ingest(context: dg.ScheduleEvaluationContext):
        """Every hour: yesterday and today (late uploads land in yesterday), raw to gold.

        One ranged run: both days are ingested, then dbt rebuilds both days' bronze, silver
        and gold, so a reading uploaded late for yesterday reaches the marts within the hour.
        """
        today = context.scheduled_execution_time.date()
        yesterday = today - timedelta(days=1)
        yield dg.RunRequest(
            run_key=f"{yesterday}..{today}@{context.scheduled_execution_time:%Y%m%d%H}",
            tags={
                ASSET_PARTITION_RANGE_START_TAG: yesterday.isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: today.isoformat(),
            },
        )

    weekly_maintenance = dg.ScheduleDefinition(
        job=lake_maintenance, cron_schedule="30 3 * * 0", execution_timezone=settings.timezone
    )

    dbt_after_ingest = dg.AutomationConditionSensorDefinition(
        "dbt_after_ingest",
        target=dg.AssetSelection.groups(*LAYERS),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=[readings_unique_and_plausible],
        jobs=[pipeline, ingest, hourly, refine, lake_maintenance],
        schedules=[hourly_ingest, weekly_maintenance],
        sensors=[dbt_after_ingest],
        resources={
            "cascade": cascade,
            "dbt": dbt_resource(),
        },
    )
