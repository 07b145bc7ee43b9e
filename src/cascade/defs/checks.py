"""A blocking check on the readings fact: no duplicate readings, every value plausible."""

import dagster as dg

from cascade.defs.resources import CascadeResource
from cascade.lake.connection import connect

READINGS = dg.AssetKey(["silver", "fct_glucose_readings"])
PLAUSIBLE_MG_DL = (20, 600)


@dg.asset_check(
    asset=READINGS,
    blocking=True,
    description=f"No two readings share subject and time; every value in {PLAUSIBLE_MG_DL} mg/dL",
)
def readings_unique_and_plausible(cascade: CascadeResource) -> dg.AssetCheckResult:
    settings = cascade.settings()
    low, high = PLAUSIBLE_MG_DL
    with connect(settings, read_only=True) as con:
        rows, duplicates, implausible = con.execute(
            f"""
            select count(*),
                   count(*) - count(distinct (subject_id, reading_at)),
                   count(*) filter (where glucose_mg_dl not between {low} and {high})
            from {settings.lake_alias}.silver.fct_glucose_readings
            """
        ).fetchone()
    return dg.AssetCheckResult(
        passed=duplicates == 0 and implausible == 0,
        metadata={
            "rows": rows,
            "duplicate_readings": duplicates,
            "implausible_values": implausible,
        },
    )
