"""Meals, device changes and data sufficiency on real lakes.

iglu_python (0.4.3) has no meal_metrics, so the parity reference is a port of R iglu's
`meal_metrics_single` (R/meal_metrics.R) with its defaults: before_win 1 h, after_win 3 h,
recovery_win 1 h, adjust_mealtimes. Its default interpolation onto a grid from midnight changes
nothing on the hand-made trace below, which lies on exactly that grid with no gaps; on real,
jittered traces cascade uses the readings as they are (see mrt_meals).
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest

from cascade.demo.generator import (
    devicestatus_for_day,
    entries_for_day,
    profile,
    treatments_for_day,
)
from cascade.demo.stamps import day_start_ms, iso_ms
from cascade.ingest import run_load
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import run_transform

DAY = date(2024, 5, 6)
MINUTE = 60_000
TOLERANCE = 0.001
# the models under test, what they read, and the dimensions their relationship tests check
SELECT = (
    "+mrt_meals +mrt_device_changes +mrt_period_summary +mrt_daily_glycaemia +dim_date +dim_device"
)
# carb entries (minutes after DAY's midnight UTC, grams): off the 5-minute grid, one at the
# trace's start (no baseline), two overlapping, one near the end (recovery past the data)
MEALS = [
    (2.5, 20),
    (7 * 60 + 2, 45),
    (12 * 60 + 31, 60),
    (12 * 60 + 58, 15),
    (18 * 60 + 4, 70),
    (47 * 60 + 50, 30),
]


def glucose(minute: int) -> float:
    """A day-long trace: a slow wave plus a bump after each meal (peaks 40-70 min later)."""
    value = 120 + 25 * math.sin(minute / 200)
    for start, grams in MEALS:
        after = minute - start
        if 0 < after < 240:
            value += grams * 1.6 * math.exp(-(((after - 55) / 35) ** 2))
    return round(value)


def trace() -> list[tuple[int, float]]:
    """(epoch ms, mg/dL) every 5 minutes on the grid from DAY's midnight, for two days."""
    start = day_start_ms(DAY)
    return [(start + m * MINUTE, glucose(m)) for m in range(0, 48 * 60, 5)]


def iglu_meal_metrics(points: list[tuple[int, float]], meal_ms: int) -> dict | None:
    """R iglu's meal_metrics_single for one meal on a gap-free trace at a 5-minute grid."""
    dt0_ms = 5 * MINUTE
    near = [(abs(ms - meal_ms), ms) for ms, _ in points if abs(ms - meal_ms) <= dt0_ms]
    if not near:
        return None
    anchor = min(near)[1]
    by_time = dict(points)
    before = [g for ms, g in points if anchor - 3_600_000 <= ms < anchor]
    after = [(ms, g) for ms, g in points if anchor < ms <= anchor + 3 * 3_600_000]
    base = sum(before) / len(before) if before else math.nan
    peak = max(g for _, g in after)
    peak_ms = next(ms for ms, g in after if g == peak)
    recover = by_time.get(peak_ms + 3_600_000)
    delta = peak - base
    return {
        "baseline_mg_dl": base,
        "peak_mg_dl": peak,
        "rise_mg_dl": delta,
        "time_to_peak_min": (peak_ms - anchor) / MINUTE,
        "recovery_mg_dl": recover,
        "recovery_pct": None if recover is None or not delta else 100 * (peak - recover) / delta,
    }


def load(settings: Settings, records: dict[str, list[dict]]) -> None:
    stats = FetchStats()
    run_load(settings, nightscout_file(records, stats), stats)


def rows(settings: Settings, sql: str) -> list[dict]:
    with connect(settings, read_only=True) as con:
        frame = con.execute(sql).df()
    return frame.to_dict("records")


def test_meals_match_iglu_meal_metrics(local_settings: Settings):
    points = trace()
    entries = [
        {
            "_id": f"e{ms}",
            "type": "sgv",
            "date": ms,
            "dateString": iso_ms(ms),
            "sgv": g,
            "device": "test-cgm",
            "utcOffset": 0,
            "subject_id": "meals",
        }
        for ms, g in points
    ]
    start = day_start_ms(DAY)
    treatments = [
        {
            "_id": f"c{i}",
            "eventType": "Carb Correction",
            "created_at": iso_ms(start + int(m * MINUTE)),
            "carbs": grams,
            "utcOffset": 0,
            "subject_id": "meals",
        }
        for i, (m, grams) in enumerate(MEALS)
    ]
    # a bolus 12 minutes before the breakfast entry, one with the lunch record itself
    treatments += [
        {
            "_id": "b1",
            "eventType": "Bolus",
            "created_at": iso_ms(start + (7 * 60 - 10) * MINUTE),
            "insulin": 4.0,
            "utcOffset": 0,
            "subject_id": "meals",
        },
        {
            "_id": "b2",
            "eventType": "Meal Bolus",
            "created_at": iso_ms(start + (18 * 60 + 4) * MINUTE),
            "insulin": 6.0,
            "utcOffset": 0,
            "subject_id": "meals",
        },
    ]
    status = [r | {"subject_id": "meals"} for r in devicestatus_for_day(DAY)]
    zone = [r | {"subject_id": "meals"} for r in profile()]  # UTC
    load(
        local_settings,
        {"entries": entries, "treatments": treatments, "devicestatus": status, "profile": zone},
    )
    run_transform(local_settings, select=SELECT)

    ours = rows(local_settings, "select * from ducklake.gold.mrt_meals order by meal_at")
    assert len(ours) == len(MEALS)
    for row, (minute, grams) in zip(ours, MEALS, strict=True):
        assert row["carbs_g"] == grams
        expected = iglu_meal_metrics(points, start + int(minute * MINUTE))
        for column, value in expected.items():
            got = row[column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert got is None or math.isnan(got), f"meal at {minute}: {column} {got}"
            else:
                assert got == pytest.approx(value, abs=TOLERANCE), f"meal at {minute}: {column}"
    prebolus = {r["carbs_g"]: r["prebolus_min"] for r in ours}
    assert prebolus[45] == pytest.approx(12.0) and prebolus[70] == pytest.approx(0.0)
    assert math.isnan(prebolus[20]) or prebolus[20] is None


def demo_lake(settings: Settings, days: int) -> None:
    records = {
        "entries": [],
        "treatments": [],
        "devicestatus": [],
        "profile": profile(uploader="loop"),
    }
    for offset in range(days):
        day = DAY + timedelta(days=offset)
        records["entries"] += entries_for_day(day, uploader="loop")
        records["treatments"] += treatments_for_day(day, uploader="loop")
        records["devicestatus"] += devicestatus_for_day(day, uploader="loop")
    for collection in records.values():
        for record in collection:
            record["subject_id"] = "loop"
    load(settings, records)


def test_lifecycle_meals_and_sufficiency_on_a_demo_lake(local_settings: Settings):
    demo_lake(local_settings, 16)
    run_transform(local_settings, select=SELECT)

    starts = rows(
        local_settings,
        "select treated_at from ducklake.bronze.stg_treatments "
        "where event_type = 'Sensor Start' order by treated_at",
    )
    changes = rows(
        local_settings,
        "select change_type, changed_at, days_since_previous from ducklake.silver.fct_device_changes "
        "where change_type = 'sensor' order by changed_at",
    )
    assert [c["changed_at"] for c in changes] == [s["treated_at"] for s in starts] and starts
    # sensor age: a plain-Python as-of lookup over the sensor starts
    readings = rows(
        local_settings,
        "select reading_at, sensor_age_days from ducklake.silver.fct_glucose_readings "
        "using sample 300 rows (reservoir, 7)",
    )
    for reading in readings:
        started = [s["treated_at"] for s in starts if s["treated_at"] <= reading["reading_at"]]
        if not started:
            assert math.isnan(reading["sensor_age_days"]) or reading["sensor_age_days"] is None
        else:
            age = (reading["reading_at"] - started[-1]).total_seconds() / 86400
            assert reading["sensor_age_days"] == pytest.approx(age, abs=1e-4)

    marts = rows(
        local_settings,
        "select period, change_type, changes from ducklake.gold.mrt_device_changes",
    )
    assert {(m["period"], m["change_type"]) for m in marts} >= {("all", "sensor"), ("all", "site")}
    assert next(m for m in marts if m["period"] == "all" and m["change_type"] == "sensor")[
        "changes"
    ] == len(starts)

    summary = {
        r["period"]: r
        for r in rows(local_settings, "select * from ducklake.gold.mrt_period_summary")
    }
    for row in summary.values():
        assert row["days_with_data"] + row["partial_days"] <= row["days"]
        assert row["is_sufficient"] == (row["days_with_data"] >= 14 and row["wear_pct"] >= 70)
    daily = rows(
        local_settings,
        "select local_date, is_partial_day from ducklake.gold.mrt_daily_glycaemia order by 1",
    )
    partial = [d["local_date"] for d in daily if d["is_partial_day"]]
    assert partial in ([], [daily[-1]["local_date"]])
    assert summary["all"]["partial_days"] == len(partial)

    meals = rows(local_settings, "select * from ducklake.gold.mrt_meals")
    carbs = rows(
        local_settings,
        "select count(*) as n from ducklake.silver.fct_treatments where carbs_g > 0",
    )
    assert len(meals) == carbs[0]["n"] > 0
    anchored = [m for m in meals if m["glucose_anchor_at"] is not None and m["after_readings"]]
    assert anchored and all(0 < m["time_to_peak_min"] <= 180 for m in anchored)
    assert all(
        m["peak_mg_dl"] - m["baseline_mg_dl"] == pytest.approx(m["rise_mg_dl"], abs=1e-3)
        for m in anchored
        if m["baseline_readings"]
    )
