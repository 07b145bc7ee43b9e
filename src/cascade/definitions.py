"""cascade's Dagster code location (`dagster dev`, `dg dev`, `cascade dev`; see [tool.dagster]).

Only assembles the `cascade.defs` modules and applies cross-cutting policy once. Definitions
are built when Dagster loads the code location, so importing this module reads no environment.
"""

from __future__ import annotations

import warnings

import dagster as dg

from cascade.defs.ingestion import build_ingestion_assets
from cascade.defs.jobs import JOBS
from cascade.defs.partitions import daily_partitions, ingestion_backfill_policy
from cascade.defs.publish import published_marts
from cascade.defs.resources import CascadeResource
from cascade.defs.schedules import build_schedules
from cascade.defs.sensors import SENSORS
from cascade.defs.transform import build_dbt_assets
from cascade.settings import Settings
from cascade.transform import dbt_resource

# The site registry: written by `cascade sites`, read by dbt (a site's registered timezone).
SITE_REGISTRY = dg.AssetSpec(
    ["ops", "sites"],
    group_name="ops",
    description="The site registry (ops.sites), written by `cascade sites add/import/remove`.",
)


def build_definitions(
    settings: Settings | None = None, resource: CascadeResource | None = None
) -> dg.Definitions:
    """Everything Dagster loads: assets, jobs, schedules, the dbt sensor, resources.

    Without arguments (the UI) each run builds its Settings from the environment. `settings`
    (the CLI's runners, tests) become the resource's overrides; `resource` replaces it whole.
    """
    if resource is None:
        resource = CascadeResource.from_settings(settings) if settings else CascadeResource()
    settings = settings or Settings()
    partitions = daily_partitions(settings)
    # policy: raw tables backfill in ranged runs, dbt's models in one run over the range
    # (cascade.defs.runners.run_backfill does the same); a job holding both uses the ranged one
    warnings.filterwarnings(
        "ignore", message=r".*materializes assets with varying BackfillPolicies"
    )
    assets = [
        SITE_REGISTRY,
        *build_ingestion_assets(partitions, ingestion_backfill_policy()),
        *build_dbt_assets(partitions, dg.BackfillPolicy.single_run()),
    ]
    if settings.marts_url is not None:
        assets.append(published_marts)
    return dg.Definitions(
        assets=assets,
        jobs=JOBS,
        schedules=build_schedules(settings.timezone),
        sensors=SENSORS,
        resources={"cascade": resource, "dbt": dbt_resource()},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
