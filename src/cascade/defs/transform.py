"""dbt assets: bronze → silver → gold as two multi-assets over one manifest.

Incremental models (window_replace by local day) are partitioned like the raw tables they
read, and so are the few table models they read (the profile's): a step is one dbt process
(seconds of start-up), so a run makes two, not three with the profile tables apart. The other
table models (dimensions, whole-period marts) are rebuilt whole by every run, downstream of
the daily ones, and carry no partitions. Both run dbt through `cascade.transform`, exactly as
`cascade transform` does; dbt's tests become asset checks, and `dbt build` skips whatever sits
downstream of a failing test.
"""

import logging
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


class CoversTestsAreObservations(logging.Filter):
    """Drops dagster-dbt's warning, three times a run, that a `covers` test (tests/generic/
    covers.sql) is logged as an observation: that test reads a model of the other dbt step by
    design, so it is no asset check; it still fails its step when it fails."""

    PREFIX = "Logging an `AssetObservation` instead of an `AssetCheckResult` for dbt test `covers_"

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.PREFIX)


logging.getLogger("dagster.builtin").addFilter(CoversTestsAreObservations())
# every incremental model and every model upstream of one (dbt's graph operator)
DAILY_SELECTOR = "+config.materialized:incremental"


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
    """The run's partition range as dbt's window, for a step without partitions of its own
    (the table models' step rebuilds what the partitioned step's window changed)."""
    tags = context.run.tags
    if RANGE_START_TAG not in tags:
        return None, None
    first, last = (date.fromisoformat(tags[t]) for t in (RANGE_START_TAG, RANGE_END_TAG))
    return first, date.fromordinal(last.toordinal() + 1)


def build_dbt_assets(partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy):
    """The partitioned (incremental) and unpartitioned (table) dbt assets."""
    project = dbt_project()
    common = dict(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=CascadeTranslator(),
        pool=LAKE_POOL,
    )

    @dbt_assets(
        name="dbt_daily",
        select=DAILY_SELECTOR,
        partitions_def=partitions,
        backfill_policy=policy,
        **common,
    )
    def dbt_daily(context: dg.AssetExecutionContext, dbt: DbtCliResource, cascade: CascadeResource):
        yield from dbt_build(context, dbt, cascade, *local_dates(partition_window(context)))

    @dbt_assets(name="dbt_tables", exclude=DAILY_SELECTOR, **common)
    def dbt_tables(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, cascade: CascadeResource
    ):
        yield from dbt_build(context, dbt, cascade, *run_range(context))

    return [dbt_daily, dbt_tables]
