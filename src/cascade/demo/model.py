"""The physiology behind the demo data: a day's plan of events and the glucose curve it makes.

Everything is derived from seeded random generators keyed by the seed and the UTC day (or a
global knot index), so a day looks the same whichever range it is generated in. The constants
are tuned so that a year averages about 150 mg/dL with ~70% time in range, ~3% below 70 and
~1.5% below 54, like a typical adult with type 1 diabetes on a pump.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

SENSOR_DAYS = 10
WARMUP_MINUTES = 120
SITE_DAYS = 3
KNOT_MINUTES = 240
_KNOTS_PER_DAY = 1440 // KNOT_MINUTES


@dataclass(frozen=True)
class Meal:
    """A bolused meal: a fast rise (peak at `peak` minutes) plus the late effect of a mis-dosed
    bolus (`residual` > 0 under-dosed, < 0 over-dosed)."""

    minute: float
    carbs: int
    rise: float
    peak: float
    residual: float


@dataclass(frozen=True)
class Dip:
    """An overnight low: a Gaussian trough centred at `minute`."""

    minute: float
    depth: float
    width: float


@dataclass(frozen=True)
class DayPlan:
    """What happens on one UTC day; minutes count from 00:00 UTC."""

    day: date
    seed: str
    meals: tuple[Meal, ...]
    dips: tuple[Dip, ...]
    gaps: tuple[tuple[float, float], ...]  # (start, end) minutes without readings
    sensor_change: float | None
    site_change: float | None
    knots: tuple[float, ...]  # slow drift at 00:00, 04:00, ..., 24:00


def seed_number(seed: str, salt: str) -> int:
    """A stable 32-bit number for a seed (Python's `hash` is salted per process)."""
    return zlib.crc32(f"{seed}:{salt}".encode())


def day_rng(seed: str, day: date, topic: str) -> random.Random:
    """The random generator for one topic of one day."""
    return random.Random(f"{seed}:{day.isoformat()}:{topic}")


def is_sensor_change_day(day: date, seed: str) -> bool:
    """A new sensor is started every SENSOR_DAYS days."""
    return (day.toordinal() + seed_number(seed, "sensor")) % SENSOR_DAYS == 0


def is_site_change_day(day: date, seed: str) -> bool:
    """The pump's infusion set is changed every SITE_DAYS days."""
    return (day.toordinal() + seed_number(seed, "site")) % SITE_DAYS == 0


def sensor_session(day: date, seed: str) -> int:
    """The number of the sensor worn at the end of `day`."""
    return (day.toordinal() + seed_number(seed, "sensor")) // SENSOR_DAYS


@lru_cache(maxsize=2048)
def plan_for_day(day: date, seed: str) -> DayPlan:
    """The events of one day, drawn from the day's own random generator."""
    rng = day_rng(seed, day, "plan")
    return DayPlan(
        day=day,
        seed=seed,
        meals=_meals(rng),
        dips=_dips(rng),
        gaps=_gaps(rng),
        sensor_change=rng.uniform(420, 1260) if is_sensor_change_day(day, seed) else None,
        site_change=rng.uniform(600, 1320) if is_site_change_day(day, seed) else None,
        knots=tuple(
            _knot(seed, day.toordinal() * _KNOTS_PER_DAY + i) for i in range(_KNOTS_PER_DAY + 1)
        ),
    )


def _meals(rng: random.Random) -> tuple[Meal, ...]:
    """Breakfast, lunch, dinner: (usual minute, spread in minutes, carb range in grams)."""
    meals = []
    for centre, spread, low, high in ((450, 30, 30, 60), (750, 45, 40, 80), (1140, 50, 50, 90)):
        if rng.random() < 0.08:
            continue
        carbs = rng.randint(low, high)
        rise = carbs * rng.uniform(1.3, 2.2)
        residual = rise * rng.gauss(0.0, 0.35)
        if rng.random() < 0.12:  # a forgotten or late bolus: the highs above 250
            residual += rise * rng.uniform(0.8, 1.5)
        meals.append(Meal(rng.gauss(centre, spread), carbs, rise, rng.uniform(45, 75), residual))
    return tuple(meals)


def _dips(rng: random.Random) -> tuple[Dip, ...]:
    if rng.random() >= 0.33:
        return ()
    return (Dip(rng.uniform(90, 330), rng.uniform(40, 95), rng.uniform(35, 60)),)


def _gaps(rng: random.Random) -> tuple[tuple[float, float], ...]:
    if rng.random() >= 0.35:
        return ()
    gaps = []
    for _ in range(rng.randint(1, 3)):
        start = rng.uniform(30, 1340)
        gaps.append((start, min(start + rng.uniform(15, 90), 1430)))
    return tuple(sorted(gaps))


def _knot(seed: str, index: int) -> float:
    """Slow drift at a global 4-hour knot, shared by the two days that meet there."""
    return random.Random(f"{seed}:knot:{index}").gauss(0.0, 20.0)


_STEP = 5
_POINTS = 1440 // _STEP + 2  # 23:55 the day before .. 24:00
_REACH = 1200 // _STEP  # a meal's effect is negligible after 20 hours


def _grid_minute(i: int) -> int:
    return (i - 1) * _STEP


def _drift_weights() -> list[tuple[int, float]]:
    """(knot index, weight of the next knot) of each grid point, for cosine interpolation."""
    weights = []
    for i in range(_POINTS):
        minute = min(max(_grid_minute(i), 0), 1440)
        index = min(minute // KNOT_MINUTES, _KNOTS_PER_DAY - 1)
        frac = (minute - index * KNOT_MINUTES) / KNOT_MINUTES
        weights.append((index, (1.0 - math.cos(math.pi * frac)) / 2.0))
    return weights


_DRIFT = _drift_weights()
# The dawn phenomenon: hormones raise glucose in the early morning, peaking around 06:30.
_DAWN = [28.0 * math.exp(-(((_grid_minute(i) - 390.0) / 80.0) ** 2)) for i in range(_POINTS)]


@lru_cache(maxsize=64)
def _rise(peak: int) -> list[float]:
    """A unit-peak rise-and-decay shape peaking `peak` minutes after the event, per grid step."""
    return [(x := j * _STEP / peak) * math.exp(1.0 - x) for j in range(_REACH)]


class Curve:
    """Noise-free glucose (mg/dL) of one day, tabulated every 5 minutes from 23:55 the day before
    to 24:00, and interpolated in between.

    Yesterday's meals are included because their late effects reach past midnight.
    """

    def __init__(self, plan: DayPlan, yesterday: DayPlan, base: float) -> None:
        knots = plan.knots
        values = [
            base + dawn + knots[k] * (1.0 - w) + knots[k + 1] * w
            for dawn, (k, w) in zip(_DAWN, _DRIFT, strict=True)
        ]
        slow = _rise(150)
        meals = [(m.minute - 1440, m) for m in yesterday.meals]
        meals += [(m.minute, m) for m in plan.meals]
        for minute, meal in meals:
            first = round(minute / _STEP) + 1
            fast = _rise(round(meal.peak))
            for j in range(max(-first, 0), min(_REACH, _POINTS - first)):
                values[first + j] += meal.rise * fast[j] + meal.residual * slow[j]
        for dip in plan.dips:
            for i in range(_POINTS):
                distance = (_grid_minute(i) - dip.minute) / dip.width
                values[i] -= dip.depth * math.exp(-distance * distance)
        self.values = values

    def points(self) -> list[tuple[float, float]]:
        """(minute, glucose) every 5 minutes from 00:00 to 23:55."""
        return [(float(_grid_minute(i)), self.values[i]) for i in range(1, _POINTS - 1)]

    def __call__(self, minute: float) -> float:
        """Glucose at `minute` after 00:00 (-5 to 1440), interpolated linearly."""
        position = min(max(minute / _STEP + 1.0, 0.0), _POINTS - 1.001)
        index = int(position)
        frac = position - index
        return self.values[index] * (1.0 - frac) + self.values[index + 1] * frac


@lru_cache(maxsize=512)
def curve_for_day(day: date, seed: str) -> Curve:
    """The glucose curve of one day for this seed's person."""
    base = 109.0 + (seed_number(seed, "person") % 1000) / 1000.0 * 4.0
    return Curve(
        plan_for_day(day, seed), plan_for_day(date.fromordinal(day.toordinal() - 1), seed), base
    )
