"""Sensors: dbt models follow new raw data; the `sites` partitions follow the registry; dbt
rebuilds the days a run of the sites job touched."""

from __future__ import annotations

import dagster as dg

from cascade.defs.ingestion import touched_sites
from cascade.defs.jobs import sites, sites_dbt
from cascade.defs.partitions import (
    AFTER_SITES_RUN_TAG,
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


def dbt_request(context: dg.RunStatusSensorContext, settings: Settings):
    """One dbt run over the days the monitored run touched, for the subjects it loaded (also
    after a partial failure: the sites that loaded must reach gold)."""
    run_id = context.dagster_run.run_id
    window = touched_range(touched_sites(context.instance, run_id).values(), settings)
    if window is None:
        return dg.SkipReason(f"run {run_id} loaded no rows")
    tags = partition_range_tags(*window) | {AFTER_SITES_RUN_TAG: run_id}
    return dg.RunRequest(run_key=f"dbt-after-{run_id}", tags=tags)


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
