"""Ingestion assets: Nightscout → dlt → <lake>.raw, one daily partition (or a range) per run."""

import dagster as dg

from cascade.defs.partitions import LAKE_POOL, partition_window
from cascade.defs.resources import CascadeResource
from cascade.ingest import IngestResult, ingest_site
from cascade.sources.nightscout.helpers import Window

PARTITIONED = ("entries", "treatments", "devicestatus")
KINDS = {"dlt", "ducklake"}


def raw_key(collection: str) -> dg.AssetKey:
    """The asset key of a raw table; dbt's source `raw.<table>` maps to the same key."""
    return dg.AssetKey(["raw", collection])


def materializations(result: IngestResult, collections: tuple[str, ...]):
    """One MaterializeResult per raw table with what the load did to it."""
    for collection in collections:
        counts = result.tables.get(collection)
        yield dg.MaterializeResult(
            asset_key=raw_key(collection),
            metadata={
                "rows_fetched": result.fetched_by_collection.get(collection, 0),
                "rows_inserted": counts.inserted if counts else 0,
                "rows_updated": counts.updated if counts else 0,
                "bad_records": result.bad_by_collection.get(collection, 0),
                "seconds": dg.FloatMetadataValue(round(result.seconds, 2)),
                "ducklake_snapshot_id": result.snapshot_id,
                "data_files_written": result.data_files,
                "commit_retries": result.commit_retries,
            },
        )


def build_ingestion_assets(partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy):
    """The partitioned raw tables (one multi-asset, subsettable) and the unpartitioned profile."""

    @dg.multi_asset(
        name="nightscout_raw",
        specs=[
            dg.AssetSpec(
                raw_key(c),
                group_name="raw",
                kinds=KINDS,
                description=f"Nightscout {c}, merged on (subject_id, record_key) by dlt",
            )
            for c in PARTITIONED
        ],
        partitions_def=partitions,
        backfill_policy=policy,
        can_subset=True,
        pool=LAKE_POOL,
    )
    def nightscout_raw(context: dg.AssetExecutionContext, cascade: CascadeResource):
        settings = cascade.settings()
        collections = tuple(c for c in PARTITIONED if raw_key(c) in context.selected_asset_keys)
        window = partition_window(context)
        context.log.info(f"ingesting {', '.join(collections)} for {window.start} – {window.end}")
        result = ingest_site(settings, window, collections=collections)
        context.log.info(result.describe())
        yield from materializations(result, collections)

    @dg.asset(
        key=raw_key("profile"),
        group_name="raw",
        kinds=KINDS,
        pool=LAKE_POOL,
        description="Nightscout treatment profiles (basal, ISF, carb ratio, targets)",
    )
    def nightscout_profile(context: dg.AssetExecutionContext, cascade: CascadeResource):
        settings = cascade.settings()
        everything = Window.all_time()
        result = ingest_site(settings, everything, collections=("profile",))
        context.log.info(result.describe())
        return next(materializations(result, ("profile",)))

    return [nightscout_raw, nightscout_profile]
