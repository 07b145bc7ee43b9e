"""Sensors: dbt models follow new raw data by their automation conditions."""

import dagster as dg

from cascade.defs.transform import LAYERS

dbt_after_ingest = dg.AutomationConditionSensorDefinition(
    "dbt_after_ingest",
    target=dg.AssetSelection.groups(*LAYERS),
    default_status=dg.DefaultSensorStatus.RUNNING,
)

SENSORS = [dbt_after_ingest]
