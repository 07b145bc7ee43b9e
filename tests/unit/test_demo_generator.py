"""The demo data generator: deterministic per day, and physiologically plausible."""

from __future__ import annotations

import re
import statistics
from datetime import date, timedelta

import pytest

from cascade.demo import generator, model, store
from cascade.demo.generator import (
    devicestatus_for_day,
    entries_for_day,
    profile,
    treatments_for_day,
)
from cascade.demo.stamps import day_start_ms

DIRECTIONS = {
    "DoubleUp",
    "SingleUp",
    "FortyFiveUp",
    "Flat",
    "FortyFiveDown",
    "SingleDown",
    "DoubleDown",
    "NONE",
    "NOT COMPUTABLE",
    "RATE OUT OF RANGE",
}
MONTH = [date(2024, 1, 1) + timedelta(days=i) for i in range(30)]
HEX24 = re.compile(r"^[0-9a-f]{24}$")


def _clear_caches() -> None:
    for cached in (
        generator.day_entries,
        generator.day_treatments,
        generator.day_devicestatus,
        model.plan_for_day,
        model.curve_for_day,
        store._generated_day,
    ):
        cached.cache_clear()


def _day(day: date) -> tuple[list, list, list]:
    return entries_for_day(day), treatments_for_day(day), devicestatus_for_day(day)


def _sgvs(days: list[date]) -> list[int]:
    return [e["sgv"] for d in days for e in entries_for_day(d) if e["type"] == "sgv"]


def test_same_day_and_seed_give_the_same_records_even_without_cache() -> None:
    first = _day(date(2024, 5, 17))
    _clear_caches()
    assert _day(date(2024, 5, 17)) == first
    assert len(first[0]) > 200


def test_a_day_generated_inside_a_long_range_equals_the_day_alone() -> None:
    _clear_caches()
    in_range = {d: _day(d) for d in (date(2024, 2, 1) + timedelta(days=i) for i in range(40))}
    _clear_caches()
    assert _day(date(2024, 2, 20)) == in_range[date(2024, 2, 20)]


def test_seeds_give_different_people() -> None:
    assert entries_for_day(date(2024, 1, 1), "alice") != entries_for_day(date(2024, 1, 1), "bob")


def test_returned_records_are_copies() -> None:
    entries_for_day(date(2024, 1, 2))[0]["sgv"] = -1
    devicestatus_for_day(date(2024, 1, 2))[0]["pump"]["reservoir"] = -1
    assert entries_for_day(date(2024, 1, 2))[0]["sgv"] != -1
    assert devicestatus_for_day(date(2024, 1, 2))[0]["pump"]["reservoir"] != -1


def test_entry_shape() -> None:
    sgv = next(e for e in entries_for_day(date(2024, 1, 3)) if e["type"] == "sgv")
    assert set(sgv) == {
        "_id",
        "type",
        "date",
        "dateString",
        "sysTime",
        "sgv",
        "direction",
        "noise",
        "filtered",
        "unfiltered",
        "rssi",
        "device",
        "utcOffset",
    }
    assert HEX24.match(sgv["_id"])
    assert isinstance(sgv["date"], int) and isinstance(sgv["sgv"], int)
    assert sgv["dateString"].endswith("Z") and sgv["dateString"] == sgv["sysTime"]
    assert sgv["dateString"].startswith("2024-01-03T")
    assert sgv["noise"] == 1 and sgv["utcOffset"] == 0 and sgv["device"] == "xDrip-DexcomG6"


def test_readings_every_five_minutes_within_limits() -> None:
    for day in MONTH:
        plan = model.plan_for_day(day, "demo")
        sgvs = [e for e in entries_for_day(day) if e["type"] == "sgv"]
        assert all(40 <= e["sgv"] <= 400 for e in sgvs)
        assert all(e["direction"] in DIRECTIONS for e in sgvs)
        start = day_start_ms(day)
        assert all(start <= e["date"] < start + 86_400_000 for e in sgvs)
        steps = [b["date"] - a["date"] for a, b in zip(sgvs, sgvs[1:], strict=False)]
        assert all(steps), "no two readings at the same time"
        assert statistics.median(steps) == pytest.approx(300_000, abs=6_000)
        if not plan.gaps and plan.sensor_change is None:
            assert 288 * 0.9 <= len(sgvs) <= 288 * 1.1
            assert all(294_000 <= step <= 306_000 for step in steps)


def test_a_month_looks_like_a_person_with_type_1_diabetes() -> None:
    values = _sgvs(MONTH)
    n = len(values)
    in_range = sum(70 <= v <= 180 for v in values) / n * 100
    below_70 = sum(v < 70 for v in values) / n * 100
    assert 135 <= statistics.mean(values) <= 170
    assert 60 <= in_range <= 75
    assert 1 <= below_70 <= 6
    assert any(v < 54 for v in values)
    assert any(v > 250 for v in values)


def test_gaps_and_sensor_warmups_exist() -> None:
    longest_gaps = []
    for day in MONTH:
        times = [e["date"] for e in entries_for_day(day) if e["type"] == "sgv"]
        longest_gaps.append(max(b - a for a, b in zip(times, times[1:], strict=False)))
    assert sum(15 * 60_000 <= gap < 2 * 3_600_000 for gap in longest_gaps) >= 3
    assert sum(gap >= 2 * 3_600_000 for gap in longest_gaps) in (3, 4)  # a sensor every 10 days
    change_days = [d for d in MONTH if model.plan_for_day(d, "demo").sensor_change is not None]
    for day in change_days:
        events = {t["eventType"] for t in treatments_for_day(day)}
        assert "Sensor Start" in events
        assert any(e["type"] == "cal" for e in entries_for_day(day))


def test_ids_are_unique_across_collections() -> None:
    ids = [r["_id"] for d in MONTH for records in _day(d) for r in records]
    assert len(ids) == len(set(ids))
    assert all(HEX24.match(i) for i in ids)


def test_meal_boluses_come_with_glucose_rises() -> None:
    rises = []
    for day in MONTH:
        sgvs = [(e["dateString"], e["sgv"]) for e in entries_for_day(day) if e["type"] == "sgv"]
        for meal in (t for t in treatments_for_day(day) if t["eventType"] == "Meal Bolus"):
            assert meal["carbs"] > 0 and meal["insulin"] > 0
            after = [v for stamp, v in sgvs if stamp > meal["created_at"]][:24]
            if after:
                rises.append(max(after) - meal["glucose"])
    assert len(rises) > 60
    assert statistics.median(rises) > 40


def test_treatment_kinds_and_shapes() -> None:
    treatments = [t for d in MONTH for t in treatments_for_day(d)]
    kinds = {t["eventType"] for t in treatments}
    assert {
        "Meal Bolus",
        "Correction Bolus",
        "Carb Correction",
        "Temp Basal",
        "Site Change",
        "Sensor Start",
    } <= kinds
    temp = next(t for t in treatments if t["eventType"] == "Temp Basal")
    assert temp["duration"] == 30 and temp["absolute"] == temp["rate"] >= 0
    assert all(
        re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", t["created_at"]) for t in treatments
    )


def test_devicestatus_every_half_hour() -> None:
    statuses = devicestatus_for_day(date(2024, 1, 5))
    assert len(statuses) == 48
    status = statuses[10]
    assert status["pump"]["battery"]["percent"] > 0
    assert 0 < status["pump"]["reservoir"] <= 200
    assert status["openaps"]["iob"]["iob"] >= 0
    assert status["pump"]["clock"] == status["created_at"] == status["openaps"]["iob"]["timestamp"]
    assert isinstance(status["uploader"]["battery"], int)


def test_profile_document() -> None:
    [document] = profile()
    default = document["store"][document["defaultProfile"]]
    assert document["units"] == default["units"] == "mg/dl"
    assert default["basal"][0] == {"time": "00:00", "value": 0.8, "timeAsSeconds": 0}
    assert {"sens", "carbratio", "target_low", "target_high", "timezone", "dia"} <= set(default)
