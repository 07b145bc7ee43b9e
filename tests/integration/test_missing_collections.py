"""Missing collections are normal: every model builds on a lake where any collection never arrived.

A treatments-only site, a device that only uploads status, a profile and nothing else: the
transform succeeds, builds every model, and leaves no half-built lake (issue 8, item 6).
"""

from __future__ import annotations

from datetime import date

import pytest

from cascade.ingest import run_load
from cascade.lake.connection import connect
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import run_transform
from tests.integration.test_transform import demo_records

MODELS = {
    "bronze": {"stg_entries", "stg_treatments", "stg_devicestatus", "stg_profile"},
    "silver": {"fct_glucose_readings", "fct_treatments", "fct_insulin_delivery"},
    "gold": {"mrt_daily_glycaemia", "mrt_daily_insulin", "mrt_daily_loop", "mrt_agp"},
}


@pytest.mark.dbt_unit_tests  # a unit test whose raw table is missing must not fail the build
@pytest.mark.parametrize("only", ["treatments", "devicestatus", "profile"])
def test_transform_builds_every_model_from_one_collection(local_settings, only):
    records = demo_records(date(2024, 3, 1), 2)
    stats = FetchStats()
    run_load(local_settings, nightscout_file({only: records[only]}, stats), stats)

    outcome = run_transform(local_settings)

    assert outcome.success
    with connect(local_settings, read_only=True) as con:
        tables = set(
            con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_catalog = 'ducklake'"
            ).fetchall()
        )
        for layer, names in MODELS.items():
            assert {(layer, name) for name in names} <= tables, f"{layer} incomplete"
        assert {
            ("raw", name) for name in ("entries", "treatments", "devicestatus", "profile")
        } & tables == {("raw", only)}
        if only == "treatments":
            daily = con.execute(
                "select count(*), sum(bolus_u) from ducklake.gold.mrt_daily_insulin"
            ).fetchone()
            boluses = sum(r.get("insulin", 0) for r in records["treatments"])
            assert daily[0] == 2 and daily[1] == pytest.approx(boluses, abs=0.01)
