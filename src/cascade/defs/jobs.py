"""The jobs: the whole pipeline, ingestion alone, dbt alone (refine), the hourly run."""

import dagster as dg

from cascade.defs.ingestion import PARTITIONED, raw_key
from cascade.defs.maintenance import lake_maintenance
from cascade.defs.transform import LAYERS

PIPELINE_JOB = "nightscout_pipeline"
INGEST_JOB = "nightscout_ingest"
REFINE_JOB = "nightscout_refine"
HOURLY_JOB = "nightscout_hourly"

RAW_PARTITIONED = dg.AssetSelection.assets(*(raw_key(c) for c in PARTITIONED))
RAW = RAW_PARTITIONED | dg.AssetSelection.assets(raw_key("profile"))

pipeline = dg.define_asset_job(PIPELINE_JOB, selection=dg.AssetSelection.all())
ingest = dg.define_asset_job(INGEST_JOB, selection=RAW_PARTITIONED)
# the hourly run ingests and builds downstream in one: late readings of yesterday reach gold
# although AutomationCondition.eager() only ever rebuilds the latest partition
# (the profile too: dbt's unpartitioned profile models wait for it)
hourly = dg.define_asset_job(HOURLY_JOB, selection=RAW | dg.AssetSelection.groups(*LAYERS))
refine = dg.define_asset_job(
    REFINE_JOB,
    selection=dg.AssetSelection.assets(raw_key("profile"))
    | dg.AssetSelection.groups(*LAYERS, "publish"),
)

JOBS = [pipeline, ingest, hourly, refine, lake_maintenance]
