"""Treatments that go with the generated glucose: boluses, carbs, temp basals, changes."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import date

from cascade.demo.model import Curve, curve_for_day, day_rng, plan_for_day
from cascade.demo.stamps import DayStamper
from cascade.demo.therapy import BASAL, CARBRATIO, ENTERED_BY, SENS, schedule_value


def treatment_records(day: date, seed: str) -> list[dict]:
    """Boluses with the meals, corrections of highs and lows, temp basals, site/sensor changes."""
    rng = day_rng(seed, day, "treatments")
    plan = plan_for_day(day, seed)
    curve = curve_for_day(day, seed)
    stamps = DayStamper(day, seed, "treatments")
    records = []

    def add(minute: float, event: str, **fields: object) -> None:
        minute = min(max(minute, 0.0), 1439.0)
        _, stamp, oid = stamps.stamp(stamps.start + int(minute * 60) * 1000)
        records.append(
            {
                "_id": oid,
                "eventType": event,
                "created_at": stamp,
                **fields,
                "enteredBy": ENTERED_BY,
                "utcOffset": 0,
            }
        )

    def glucose(minute: float) -> dict:
        return {"glucose": round(curve(minute)), "glucoseType": "Sensor", "units": "mg/dl"}

    for meal in plan.meals:
        dose = meal.carbs / schedule_value(CARBRATIO, meal.minute)
        add(
            meal.minute,
            "Meal Bolus",
            insulin=_units(dose),
            carbs=meal.carbs,
            **glucose(meal.minute),
        )
    for minute, level in _excursions(curve, lambda g: g > 230, max):
        dose = (level - 110) / schedule_value(SENS, minute)
        add(
            minute + rng.uniform(5, 15), "Correction Bolus", insulin=_units(dose), **glucose(minute)
        )
    for minute, _level in _excursions(curve, lambda g: g < 70, min):
        add(
            minute + rng.uniform(3, 10),
            "Carb Correction",
            carbs=rng.randint(12, 20),
            **glucose(minute),
        )
    for minute, rate in _temp_basals(curve, rng):
        add(minute, "Temp Basal", duration=30, absolute=rate, rate=rate)
    if plan.site_change is not None:
        add(plan.site_change, "Site Change", notes="Cannula changed")
    if plan.sensor_change is not None:
        add(plan.sensor_change, "Sensor Start", notes="Dexcom G6")
    records.sort(key=lambda record: record["created_at"])
    return records


def _units(dose: float) -> float:
    """A dose rounded to the pump's 0.05 U step."""
    return round(max(dose, 0.05) * 20) / 20


def _excursions(
    curve: Curve, outside: Callable[[float], bool], extreme: Callable
) -> Iterator[tuple[float, float]]:
    """(minute, glucose) at the extreme of each run of 5-minute points where `outside` holds."""
    run: list[tuple[float, float]] = []
    for point in [*curve.points(), (1440.0, None)]:
        if point[1] is not None and outside(point[1]):
            run.append(point)
        elif run:
            yield extreme(run, key=lambda p: p[1])
            run = []


def _temp_basals(curve: Curve, rng: random.Random) -> Iterator[tuple[float, float]]:
    """(minute, U/h) of the loop's half-hourly temp basals: off when low, up when high."""
    for slot in range(48):
        minute = slot * 30 + rng.uniform(0, 4)
        level, basal = curve(minute), schedule_value(BASAL, minute)
        if level < 85:
            yield minute, 0.0
        elif level > 180:
            yield minute, round(basal * rng.uniform(1.5, 2.2), 2)
        elif rng.random() < 0.15:
            yield minute, round(basal * rng.uniform(0.6, 1.3), 2)
