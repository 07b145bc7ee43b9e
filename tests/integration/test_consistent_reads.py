"""Readers see consistent layers: silver and gold as of the last completed dbt build."""

from __future__ import annotations

import threading
from datetime import date, timedelta

from cascade.ingest import run_load
from cascade.lake.connection import connect_at_build
from cascade.settings import Settings
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import run_transform
from tests.integration.test_transform import demo_records

DAY = date(2024, 3, 1)
ORPHAN_DAYS = (
    "select count(*) from (select distinct subject_id, local_date "
    "from silver.fct_glucose_readings) as s "
    "anti join gold.mrt_daily_glycaemia as g using (subject_id, local_date)"
)
SILVER_DAYS = "select count(distinct local_date) from silver.fct_glucose_readings"


def load(settings: Settings, first: date, days: int) -> None:
    stats = FetchStats()
    run_load(settings, nightscout_file(demo_records(first, days), stats), stats)


def test_a_reader_never_sees_silver_ahead_of_gold_during_a_build(local_settings: Settings):
    load(local_settings, DAY, 2)
    run_transform(local_settings)
    load(local_settings, DAY + timedelta(days=2), 3)

    failures: list[BaseException] = []

    def build() -> None:
        try:
            run_transform(local_settings)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    seen = []
    while builder.is_alive():
        with connect_at_build(local_settings) as con:
            seen.append(
                (con.execute(ORPHAN_DAYS).fetchone()[0], con.execute(SILVER_DAYS).fetchone()[0])
            )
    builder.join()
    assert not failures, failures
    with connect_at_build(local_settings) as con:
        seen.append(
            (con.execute(ORPHAN_DAYS).fetchone()[0], con.execute(SILVER_DAYS).fetchone()[0])
        )

    assert len(seen) > 3
    assert all(orphans == 0 for orphans, _ in seen), seen
    # the reader moved from the first build to the second only once it had finished
    assert seen[0][1] < seen[-1][1]
    assert {days for _, days in seen} == {seen[0][1], seen[-1][1]}
