"""dbt assets: bronze -> silver -> gold as one multi-asset over the manifest.

Incremental models (window_replace by local day) are partitioned like the raw tables they
read, and so are the few table models they read (the profile's). The other table models
(dimensions, whole-period marts) are rebuilt whole by every run and carry no partitions. One
multi-asset holds both (Dagster allows mixed partitions in a multi-asset that can be subset),
so a run makes one dbt process (seconds of start-up each), not one per kind of partitions. It
runs dbt through `cascade.transform`, exactly as `cascade transform` does; dbt's tests become
asset checks, and `dbt build` skips whatever sits downstream of a failing test.
"""

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from cascade.defs.ingestion import touched_sites
from cascade.defs.partitions import (
    AFTER_SITES_RUN_TAG,
    LAKE_POOL,
    RANGE_END_TAG,
    RANGE_START_TAG,
    local_dates,
    partition_window,
)
from cascade.defs.resources import CascadeResource
from cascade.transform import (
    dbt_args,
    dbt_project,
    dbt_session,
    dbt_work_dir,
    record_build,
    unit_test_exclusions,
    window_env,
)

LAYERS = ("bronze", "silver", "gold")


class CascadeTranslator(DagsterDbtTranslator):
    """Asset keys `<layer>/<model>`, groups by layer, sources onto the raw ingestion assets."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([self._layer(dbt_resource_props), dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return self._layer(dbt_resource_props)

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        # rebuild once upstream received new data (only the latest partition: see the hourly job)
        return dg.AutomationCondition.eager()

    @staticmethod
    def _layer(props: Mapping[str, Any]) -> str:
        folder = props.get("fqn", [None, None])[1]
        return folder if folder in LAYERS else props.get("config", {}).get("schema") or "dbt"


def dbt_build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    cascade: CascadeResource,
    start: date | None,
    end: date | None,
):
    """`dbt build` of this step's selection; on success readers may see the new snapshot."""
    settings = cascade.settings()
    args = dbt_args(settings, exclude=unit_test_exclusions(settings))
    window = window_env(start, end, run_subjects(context))
    with dbt_session(settings, echo=cascade.echo_dbt, window=window):
        target = dbt_work_dir(settings) / "target"
        yield from dbt.cli(args, context=context, target_path=target).stream()
        record_build(settings, start, end)  # only reached when dbt succeeded


def run_subjects(context: dg.AssetExecutionContext) -> list[str] | None:
    """After a run of the sites job (tag AFTER_SITES_RUN_TAG), the subjects it loaded: the
    incremental models read and replace only their rows. None (every subject) otherwise."""
    run_id = context.run.tags.get(AFTER_SITES_RUN_TAG)
    if run_id is None:
        return None
    return sorted(touched_sites(context.instance, run_id)) or None


def run_range(context: dg.AssetExecutionContext) -> tuple[date | None, date | None]:
    """The run's partition range as dbt's window, from its tags (a run of table models alone
    rebuilds what that range changed); (None, None), every day, without them."""
    tags = context.run.tags
    if RANGE_START_TAG not in tags:
        return None, None
    first, last = (date.fromisoformat(tags[t]) for t in (RANGE_START_TAG, RANGE_END_TAG))
    return first, date.fromordinal(last.toordinal() + 1)


def run_window(context: dg.AssetExecutionContext) -> tuple[date | None, date | None]:
    """dbt's window: the days of the run's partitions when it builds daily models, else
    run_range (table models alone)."""
    specs = context.assets_def.specs_by_key
    if any(specs[key].partitions_def for key in context.selected_asset_keys):
        return local_dates(partition_window(context))
    return run_range(context)


def daily_models(manifest: Mapping[str, Any]) -> set[str]:
    """dbt's `+config.materialized:incremental`: every incremental model and every model
    upstream of one (the profile tables they read), by unique id."""
    nodes = manifest["nodes"]
    daily = {
        uid
        for uid, node in nodes.items()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "incremental"
    }
    pending = list(daily)
    while pending:
        for parent in nodes[pending.pop()]["depends_on"]["nodes"]:
            if (
                parent in nodes
                and nodes[parent]["resource_type"] == "model"
                and parent not in daily
            ):
                daily.add(parent)
                pending.append(parent)
    return daily


def build_dbt_assets(partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy):
    """Every model in one multi-asset, so a run starts one dbt process (seconds of start-up).
    The daily models (daily_models) carry the daily partitions, the other tables none: Dagster
    allows both in one multi-asset that can be subset, as dagster-dbt's are."""
    project = dbt_project()
    manifest = json.loads(project.manifest_path.read_text())
    translator = CascadeTranslator()
    daily = {translator.get_asset_key(manifest["nodes"][uid]) for uid in daily_models(manifest)}

    @dbt_assets(
        name="dbt_models",
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        pool=LAKE_POOL,
        partitions_def=partitions,
        backfill_policy=policy,
    )
    def dbt_models(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, cascade: CascadeResource
    ):
        yield from dbt_build(context, dbt, cascade, *run_window(context))

    def partitioned_if_daily(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec if spec.key in daily else spec.replace_attributes(partitions_def=None)

    return [dbt_models.map_asset_specs(partitioned_if_daily)]
