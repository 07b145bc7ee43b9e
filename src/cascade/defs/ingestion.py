"""Ingestion assets: Nightscout → dlt → <lake>.raw.

The one-site shortcut (CASCADE_NIGHTSCOUT_URL) ingests by daily partition (or a range) per
run; registered sites are the partitions of `raw/nightscout_sites`, all fetched in one run
and one dlt load from their own high-water marks (see README, "Dagster").
"""

import dagster as dg

from cascade.defs.partitions import LAKE_POOL, SITES, partition_window
from cascade.defs.resources import CascadeResource
from cascade.ingest import RAW_SCHEMA, IngestResult, SitesResult, ingest_site, ingest_sites
from cascade.lake.connection import connect, quote
from cascade.settings import Settings
from cascade.sites import list_sites

# the raw tables one load of the one-site shortcut writes: every collection, the profile too
# (a second dlt load for it cost ~3 s a run); the dated ones place rows on local days
COLLECTIONS = ("entries", "treatments", "devicestatus", "profile")
DATED = ("entries", "treatments", "devicestatus")
KINDS = {"dlt", "ducklake"}
DESCRIPTIONS = {
    "profile": "Nightscout treatment profiles (basal, ISF, carb ratio, targets): the whole "
    "collection, reloaded by every run"
}


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
    """The raw tables of the one-site shortcut (one multi-asset, subsettable, one dlt load per
    run), and the registered sites' asset.

    The profile shares the daily partitions: each run reloads the site's whole profile
    collection (profiles are few and carry no day), so a partition of `raw/profile` is the
    profile as that day's run found it."""

    @dg.multi_asset(
        name="nightscout_raw",
        specs=[
            dg.AssetSpec(
                raw_key(c),
                group_name="raw",
                kinds=KINDS,
                description=DESCRIPTIONS.get(
                    c, f"Nightscout {c}, merged on (subject_id, record_key) by dlt"
                ),
            )
            for c in COLLECTIONS
        ],
        partitions_def=partitions,
        backfill_policy=policy,
        can_subset=True,
        pool=LAKE_POOL,
    )
    def nightscout_raw(context: dg.AssetExecutionContext, cascade: CascadeResource):
        settings = cascade.settings()
        collections = tuple(c for c in COLLECTIONS if raw_key(c) in context.selected_asset_keys)
        window = partition_window(context)
        context.log.info(f"ingesting {', '.join(collections)} for {window.start} – {window.end}")
        result = ingest_site(settings, window, collections=collections)
        context.log.info(result.describe())
        yield from materializations(result, collections)

    return [nightscout_raw, nightscout_sites]


SITES_KEY = raw_key("nightscout_sites")


def site_days(settings: Settings, load_id: str | None) -> dict[str, tuple[str, str]]:
    """Per subject, the first and last local day (CASCADE_TIMEZONE) of the rows one load wrote."""
    if load_id is None:
        return {}
    zone = quote(settings.timezone)
    local = f"(make_timestamp(date_ms * 1000) at time zone 'UTC' at time zone {zone})::date"
    with connect(settings, read_only=True) as con:
        tables = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                f"where table_catalog = {quote(settings.lake_alias)} "
                f"and table_schema = {quote(RAW_SCHEMA)}"
            ).fetchall()
        }
        parts = " union all ".join(
            f"select subject_id, date_ms from {RAW_SCHEMA}.{c} "
            f"where _dlt_load_id = {quote(load_id)}"
            for c in DATED
            if c in tables
        )
        if not parts:
            return {}
        rows = con.execute(
            f"select subject_id, min({local})::varchar, max({local})::varchar "
            f"from ({parts}) where date_ms is not null group by all"
        ).fetchall()
    return {subject: (first, last) for subject, first, last in rows}


def report_sites(context: dg.AssetExecutionContext, settings: Settings, result: SitesResult):
    """One materialization per site that loaded, one observation per site that failed (with its
    error); then the step fails naming them, so Dagster marks exactly those partitions failed."""
    load = result.load
    days = site_days(settings, load.load_id if load else None)
    for site in result.sites:
        metadata = {
            "status": site.status,
            "subject_id": site.subject_id,
            "rows_fetched": sum(site.fetched.values()),
            **{f"rows_{c}": n for c, n in site.fetched.items()},
            "requests": site.requests,
            "seconds": dg.FloatMetadataValue(round(site.seconds, 2)),
        }
        if site.status != "ok":
            metadata["error"] = site.error or "unknown error"
            context.log_event(
                dg.AssetObservation(SITES_KEY, partition=site.name, metadata=metadata)
            )
            continue
        first, last = days.get(site.subject_id, (None, None))
        if load is not None:
            metadata |= {"load_id": load.load_id, "ducklake_snapshot_id": load.snapshot_id}
        if first:
            metadata |= {"first_day": first, "last_day": last}
        context.log_event(
            dg.AssetMaterialization(SITES_KEY, partition=site.name, metadata=metadata)
        )
    if result.failed:
        raise dg.Failure(
            f"{len(result.failed)} of {len(result.sites)} sites failed (the others loaded): "
            + "; ".join(s.error or s.name for s in result.failed),
            metadata={s.name: s.error or "unknown error" for s in result.failed},
        )


@dg.asset(
    key=SITES_KEY,
    group_name="raw",
    kinds=KINDS,
    partitions_def=SITES,
    backfill_policy=dg.BackfillPolicy.single_run(),
    output_required=False,
    pool=LAKE_POOL,
    description="Each registered site's share of raw.entries/treatments/devicestatus/profile: "
    "one partition per site, all sites of a run fetched from their marks into ONE dlt load",
)
def nightscout_sites(context: dg.AssetExecutionContext, cascade: CascadeResource):
    settings = cascade.settings()
    active = {site.name for site in list_sites(settings)}
    names = [name for name in context.partition_keys if name in active]
    if len(names) < len(context.partition_keys):
        # removed from the registry since the sensor last synced the partitions
        gone = sorted(set(context.partition_keys) - active)
        context.log.warning(f"not ingesting removed sites: {', '.join(gone)}")
    if not names:
        return
    context.log.info(f"ingesting {len(names)} sites in one load")
    result = ingest_sites(settings, names=names)
    context.log.info(result.describe())
    report_sites(context, settings, result)


def touched_sites(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[str, str]]:
    """Per subject, the (first_day, last_day) its site's load wrote, for every site a run of
    the sites job materialised."""
    touched = {}
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is None or materialization.asset_key != SITES_KEY:
            continue
        metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        if metadata.get("first_day"):
            touched[metadata["subject_id"]] = (metadata["first_day"], metadata["last_day"])
    return touched
