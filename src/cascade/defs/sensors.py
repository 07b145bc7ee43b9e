"""Sensors: dbt models follow new raw data; the `sites` partitions follow the registry; dbt
rebuilds the days a run of the sites job touched."""

from __future__ import annotations

import dagster as dg

from cascade.defs.ingestion import SITES_KEY
from cascade.defs.jobs import sites, sites_dbt
from cascade.defs.partitions import (
    SITES,
    partition_range_tags,
    site_partition_changes,
    touched_range,
)
from cascade.defs.resources import CascadeResource
from cascade.defs.transform import LAYERS
from cascade.settings import Settings
from cascade.sites import list_sites

dbt_after_ingest = dg.AutomationConditionSensorDefinition(
    "dbt_after_ingest",
    target=dg.AssetSelection.groups(*LAYERS),
    default_status=dg.DefaultSensorStatus.RUNNING,
)


def site_partition_requests(settings: Settings, instance: dg.DagsterInstance) -> list:
    """The add/delete requests that make the `sites` partitions the registry's active sites."""
    registered = [site.name for site in list_sites(settings)]
    add, delete = site_partition_changes(
        registered, SITES.get_partition_keys(dynamic_partitions_store=instance)
    )
    requests = []
    if add:
        requests.append(SITES.build_add_request(add))
    if delete:
        requests.append(SITES.build_delete_request(delete))
    return requests


@dg.sensor(
    name="sites_partitions",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps the `sites` partitions equal to the active sites of ops.sites "
    "(`cascade sites add/import/remove`)",
)
def sites_partitions(context: dg.SensorEvaluationContext, cascade: CascadeResource):
    requests = site_partition_requests(cascade.settings(), context.instance)
    if not requests:
        return dg.SkipReason("the sites partitions match the registry")
    return dg.SensorResult(dynamic_partitions_requests=requests)


def touched_days(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(first_day, last_day) of every site a run of the sites job materialised."""
    days = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is None or materialization.asset_key != SITES_KEY:
            continue
        metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        if metadata.get("first_day"):
            days.append((metadata["first_day"], metadata["last_day"]))
    return days


def dbt_request(context: dg.RunStatusSensorContext, settings: Settings):
    """One dbt run over the days the monitored run touched (also after a partial failure:
    the sites that loaded must reach gold)."""
    run_id = context.dagster_run.run_id
    window = touched_range(touched_days(context.instance, run_id), settings)
    if window is None:
        return dg.SkipReason(f"run {run_id} loaded no rows")
    return dg.RunRequest(run_key=f"dbt-after-{run_id}", tags=partition_range_tags(*window))


@dg.run_status_sensor(
    name="dbt_after_sites",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[sites],
    request_job=sites_dbt,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def dbt_after_sites(context: dg.RunStatusSensorContext, cascade: CascadeResource):
    return dbt_request(context, cascade.settings())


@dg.run_status_sensor(
    name="dbt_after_sites_partly_failed",
    run_status=dg.DagsterRunStatus.FAILURE,
    monitored_jobs=[sites],
    request_job=sites_dbt,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def dbt_after_sites_partly_failed(context: dg.RunStatusSensorContext, cascade: CascadeResource):
    return dbt_request(context, cascade.settings())


SENSORS = [dbt_after_ingest, sites_partitions, dbt_after_sites, dbt_after_sites_partly_failed]
