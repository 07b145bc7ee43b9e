"""What the person and their pump do on one LOCAL day, before any uploader writes it down.

These are commands and events (a temp basal set, a bolus given, a suspend), not records: the
pump's delivered insulin (`cascade.demo.truth`) and every uploader's documents are derived
from them, so the records and the known truth can never disagree. Everything is drawn from
generators seeded by (seed, uploader, local date), so a day is the same in any range.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from cascade.demo.model import curve_for_day, plan_for_day, seed_number
from cascade.demo.personalities import (
    local_day_minute,
    local_midnight_ms,
    local_ms,
    personality,
)
from cascade.demo.stamps import day_start_ms
from cascade.demo.therapy import BASAL, CARBRATIO, SENS, schedule_value
from cascade.demo.treatments import _excursions, _units

CYCLE_MS = 300_000  # a loop runs once per CGM reading


@dataclass(frozen=True)
class TempBasal:
    """A temp basal command. `rate` is U/h; for AAPS `percent_of_scheduled` (0..300) instead,
    written either as Nightscout's `percent` change or as a rate-only percentage."""

    ms: int
    duration: float  # programmed minutes; the next temp or a suspend may end it earlier
    rate: float | None = None
    percent_of_scheduled: int | None = None
    rate_only: bool = False


@dataclass(frozen=True)
class Bolus:
    ms: int
    units: float
    automatic: bool
    event: str  # "Meal Bolus", "Correction Bolus" or "SMB"
    carbs: int | None = None
    glucose: float | None = None


@dataclass(frozen=True)
class Carbs:
    ms: int
    grams: int
    glucose: float


@dataclass(frozen=True)
class Suspend:
    ms: int
    end_ms: int


@dataclass(frozen=True)
class DayEvents:
    """One local day of a personality, every list sorted by time."""

    day: date
    temps: tuple[TempBasal, ...]
    boluses: tuple[Bolus, ...]
    carbs: tuple[Carbs, ...]
    suspends: tuple[Suspend, ...]
    checks: tuple[tuple[int, float], ...]  # (ms, fingerstick mg/dL)
    site_changes: tuple[int, ...]
    sensor_starts: tuple[int, ...]


def glucose_at(ms: float, seed: str, uploader: str) -> float:
    """Noise-free glucose at an instant: the day plan read in the person's local time."""
    day, minute = local_day_minute(ms, uploader)
    return curve_for_day(day, seed)(minute)


def cycle_times(start_ms: int, end_ms: int, seed: str) -> list[int]:
    """The loop's 5-minute cycle instants in [start_ms, end_ms): a fixed UTC grid per seed."""
    phase = 20_000 + seed_number(seed, "cycle") % CYCLE_MS
    first = math.ceil((start_ms - phase) / CYCLE_MS)
    return list(range(first * CYCLE_MS + phase, end_ms, CYCLE_MS))


@lru_cache(maxsize=1200)
def day_events(day: date, seed: str, uploader: str) -> DayEvents:
    """The events of one local day of this personality."""
    person = personality(uploader)
    rng = random.Random(f"{seed}:{day.isoformat()}:{uploader}:events")
    plan, curve = plan_for_day(day, seed), curve_for_day(day, seed)
    start, end = local_midnight_ms(day, uploader), local_midnight_ms(day + timedelta(1), uploader)

    def at(minute: float) -> int:
        return local_ms(day, min(max(minute, 0.0), 1439.9), uploader)

    boluses = [
        Bolus(
            at(meal.minute),
            _units(meal.carbs / schedule_value(CARBRATIO, meal.minute)),
            False,
            "Meal Bolus",
            meal.carbs,
            curve(meal.minute),
        )
        for meal in plan.meals
    ]
    for minute, level in _excursions(curve, lambda g: g > 230, max):
        dose = _units((level - 110) / schedule_value(SENS, minute))
        boluses.append(Bolus(at(minute + rng.uniform(5, 15)), dose, False, "Correction Bolus"))
    carbs = [
        Carbs(at(minute + rng.uniform(3, 10)), rng.randint(12, 20), level)
        for minute, level in _excursions(curve, lambda g: g < 70, min)
    ]
    suspends = _suspends(plan.site_change, rng, at, boluses) if uploader == "loop" else []
    temps: list[TempBasal] = []
    if person.algorithm:
        temps, automatic = _loop_commands(day, seed, uploader, rng, start, end, suspends)
        boluses += automatic
    checks = []
    if uploader != "loop" and rng.random() < 0.4:
        minute = rng.uniform(420, 1320)
        checks.append((at(minute), curve(minute) * rng.gauss(1.0, 0.05)))
    sensor_starts = []
    for utc_day in (day - timedelta(1), day, day + timedelta(1)):
        change = plan_for_day(utc_day, seed).sensor_change
        if change is not None and start <= day_start_ms(utc_day) + int(change * 60_000) < end:
            sensor_starts.append(day_start_ms(utc_day) + int(change * 60_000))
    return DayEvents(
        day=day,
        temps=tuple(temps),
        boluses=tuple(sorted(boluses, key=lambda b: b.ms)),
        carbs=tuple(sorted(carbs, key=lambda c: c.ms)),
        suspends=tuple(suspends),
        checks=tuple(checks),
        site_changes=(at(plan.site_change),) if plan.site_change is not None else (),
        sensor_starts=tuple(sensor_starts),
    )


def _suspends(site_change, rng, at, boluses) -> list[Suspend]:
    """Loop users suspend the pump for a site change and, now and then, for a shower or swim.
    A suspend that would overlap a bolus is dropped: a suspended pump cannot bolus."""
    windows = []
    if site_change is not None:
        windows.append((site_change, rng.uniform(8, 20)))
    if rng.random() < 0.15:
        windows.append((rng.uniform(600, 1300), rng.uniform(20, 60)))
    suspends = []
    for minute, length in sorted(windows):
        low, high = at(minute), at(minute + length)
        if suspends and low <= suspends[-1].end_ms:
            continue
        if not any(low - 600_000 <= b.ms <= high + 600_000 for b in boluses):
            suspends.append(Suspend(low, high))
    return suspends


def _loop_commands(day, seed, uploader, rng, start, end, suspends):
    """Temp basals and automatic boluses, one decision per 5-minute cycle from the glucose
    level and trend: low → zero temp, high → high temp and micro-boluses."""
    temps, automatic = [], []
    last_zero = False
    for ms in cycle_times(start, end, seed):
        if any(s.ms - CYCLE_MS <= ms < s.end_ms for s in suspends):
            continue
        minute = local_day_minute(ms, uploader)[1]
        level = glucose_at(ms, seed, uploader)
        rising = level - glucose_at(ms - CYCLE_MS, seed, uploader) > 0
        scheduled = schedule_value(BASAL, minute)
        factor = None
        if level < 80:
            if not last_zero or rng.random() < 0.2:
                factor = 0.0
        elif level > 180 and rng.random() < 0.5:
            factor = rng.uniform(1.4, 3.0)
        elif rng.random() < 0.1:
            factor = rng.uniform(0.4, 1.4)
        if factor is not None:
            temps.append(_temp(uploader, rng, ms, scheduled, factor))
            last_zero = factor == 0.0
        if level > 170 and rising and rng.random() < 0.25:
            units = _units(min((level - 120) / schedule_value(SENS, minute) * 0.3, 1.5))
            event = "Correction Bolus" if uploader == "loop" else "SMB"
            automatic.append(Bolus(ms + 2_000, units, True, event))
    return temps, automatic


def _temp(uploader: str, rng: random.Random, ms: int, scheduled: float, factor: float):
    if uploader == "aaps":
        # A percentage is never strictly between 0 and 40, so a rate-only value > 35 can
        # only be a percentage, never U/h (see cascade.demo.truth).
        percent = 0 if factor == 0 else min(max(round(factor * 10) * 10, 40), 300)
        return TempBasal(ms, rng.choice((30, 30, 60)), None, percent, rng.random() < 0.5)
    duration = 30 if uploader != "trio" else rng.choice((30, 30, 30, 60, 90))
    return TempBasal(ms, duration, round(scheduled * factor, 2))
