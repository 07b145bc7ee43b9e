"""dbt assets: bronze → silver → gold, partitioned like the raw tables they read."""

import json
import sys
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from cascade.defs.partitions import LAKE_POOL, local_dates, partition_window
from cascade.defs.resources import CascadeResource
from cascade.lake.extensions import ensure_installed
from cascade.lake.lock import transform_lock
from cascade.transform import (
    DBT_QUIET_ENV,
    PROJECT_DIR,
    dbt_env,
    dbt_vars,
    patched_environ,
    record_build,
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
        # rebuild a partition once its upstream partitions received new data
        return dg.AutomationCondition.eager()

    @staticmethod
    def _layer(props: Mapping[str, Any]) -> str:
        folder = props.get("fqn", [None, None])[1]
        return folder if folder in LAYERS else props.get("config", {}).get("schema") or "dbt"


def _manifest_is_stale(project: DbtProject) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [PROJECT_DIR / "dbt_project.yml", *PROJECT_DIR.glob("*/**/*.*")]
    return any(
        path.stat().st_mtime > built
        for path in sources
        if "target" not in path.parts and "logs" not in path.parts
    )


@cache
def dbt_project() -> DbtProject:
    """The one DbtProject; its manifest is (re)built by `dbt parse` when missing or stale."""
    project = DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)
    if _manifest_is_stale(project):
        from dbt.cli.main import dbtRunner

        args = ["parse", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
        with patched_environ(DBT_QUIET_ENV):
            outcome = dbtRunner().invoke(args)
        if not outcome.success:
            raise RuntimeError(f"dbt parse failed in {PROJECT_DIR}: {outcome.exception}")
    return project


def dbt_resource() -> DbtCliResource:
    """dbt from this environment's own bin directory, whatever PATH says."""
    executable = Path(sys.executable).parent / "dbt"
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=str(executable))


def build_dbt_assets(partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy):
    """All dbt models as one multi-asset; dbt tests become asset checks."""
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=CascadeTranslator(),
        partitions_def=partitions,
        backfill_policy=policy,
        pool=LAKE_POOL,
        name="cascade_dbt",
        # unit tests check the SQL, not the data: `make test` runs them, scheduled runs need not
        exclude="resource_type:unit_test",
    )
    def cascade_dbt(
        context: dg.AssetExecutionContext, dbt: DbtCliResource, cascade: CascadeResource
    ):
        settings = cascade.settings()
        start, end = local_dates(partition_window(context))
        ensure_installed()
        args = ["build", "--vars", json.dumps(dbt_vars(settings, start, end))]
        # dbt's artifacts go to a scratch folder: one per run would pile up in the project
        with (
            tempfile.TemporaryDirectory(prefix="cascade-dbt-") as target,
            transform_lock(settings),
            patched_environ(dbt_env(settings)),
        ):
            yield from dbt.cli(args, context=context, target_path=Path(target)).stream()
            # only reached when dbt succeeded: readers may now see this build
            record_build(settings, start, end)

    return cascade_dbt
