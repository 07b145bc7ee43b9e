"""The jobs: the whole pipeline, ingestion alone, dbt alone (refine), the hourly run; and for
registered sites: every site in one run (one dlt load), then dbt over the days it touched."""

import dagster as dg

from cascade.defs.ingestion import COLLECTIONS, DATED, SITES_KEY, raw_key
from cascade.defs.maintenance import lake_maintenance
from cascade.defs.transform import LAYERS

PIPELINE_JOB = "nightscout_pipeline"
INGEST_JOB = "nightscout_ingest"
REFINE_JOB = "nightscout_refine"
HOURLY_JOB = "nightscout_hourly"
SITES_JOB = "nightscout_sites"
SITES_DBT_JOB = "nightscout_sites_dbt"

RAW_DATED = dg.AssetSelection.assets(*(raw_key(c) for c in DATED))
RAW = dg.AssetSelection.assets(*(raw_key(c) for c in COLLECTIONS))

SITES_ASSET = dg.AssetSelection.assets(SITES_KEY)

# site-partitioned and day-partitioned assets never share a run: the sites job's runs are
# followed by a run of dbt over the days they touched (sensors.dbt_after_sites, run_sites)
pipeline = dg.define_asset_job(PIPELINE_JOB, selection=dg.AssetSelection.all() - SITES_ASSET)
# a backfill's ingestion runs go in parallel: the profile (the same rows in each) loads once,
# in its refine run
ingest = dg.define_asset_job(INGEST_JOB, selection=RAW_DATED)
# the hourly run ingests and builds downstream in one: late readings of yesterday reach gold
# although AutomationCondition.eager() only ever rebuilds the latest partition
# (the profile too, in the same dlt load)
hourly = dg.define_asset_job(HOURLY_JOB, selection=RAW | dg.AssetSelection.groups(*LAYERS))
refine = dg.define_asset_job(
    REFINE_JOB,
    selection=dg.AssetSelection.assets(raw_key("profile"))
    | dg.AssetSelection.groups(*LAYERS, "publish"),
)

sites = dg.define_asset_job(SITES_JOB, selection=SITES_ASSET)
sites_dbt = dg.define_asset_job(SITES_DBT_JOB, selection=dg.AssetSelection.groups(*LAYERS))

JOBS = [pipeline, ingest, hourly, refine, sites, sites_dbt, lake_maintenance]
