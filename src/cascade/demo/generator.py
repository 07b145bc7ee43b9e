"""Deterministic, realistic Nightscout data for any UTC day.

The same day and seed always give the same records, whichever range they are asked in: every
random draw comes from a generator seeded with the seed and the day. Days are cached, so a year
is generated once and then served from memory.
"""

from __future__ import annotations

import copy
import random
from bisect import bisect_left
from datetime import date
from functools import lru_cache

from cascade.demo.devicestatus import devicestatus_records
from cascade.demo.model import (
    WARMUP_MINUTES,
    curve_for_day,
    day_rng,
    plan_for_day,
    seed_number,
    sensor_session,
)
from cascade.demo.stamps import DAY_MS, DayStamper, day_start_ms, id_tag
from cascade.demo.therapy import profile_documents
from cascade.demo.treatments import treatment_records

SGV_DEVICE = "xDrip-DexcomG6"
READING_MS = 300_000
_CACHE_DAYS = 400

# xDrip's trend arrows: the rate of change (mg/dL per minute) up to each bound, and above.
_DIRECTION_BOUNDS = (-3.5, -2.0, -1.0, 1.0, 2.0, 3.5)
_DIRECTIONS = (
    "DoubleDown",
    "SingleDown",
    "FortyFiveDown",
    "Flat",
    "FortyFiveUp",
    "SingleUp",
    "DoubleUp",
)


def entries_for_day(day: date, seed: str = "demo", uploader: str = "default") -> list[dict]:
    """The sgv readings (and the odd `mbg` fingerstick or `cal` record) of one UTC day, oldest
    first. `uploader` picks a personality (see `cascade.demo.personalities`)."""
    return [dict(record) for record in day_entries(day, seed, uploader)]


def treatments_for_day(day: date, seed: str = "demo", uploader: str = "default") -> list[dict]:
    """The treatments (boluses, carbs, temp basals, site and sensor changes) of one UTC day."""
    return [dict(record) for record in day_treatments(day, seed, uploader)]


def devicestatus_for_day(day: date, seed: str = "demo", uploader: str = "default") -> list[dict]:
    """The pump/uploader status documents of one UTC day (default: one every 30 minutes;
    personalities: one per 5-minute loop cycle)."""
    return copy.deepcopy(list(day_devicestatus(day, seed, uploader)))


def profile(seed: str = "demo", uploader: str = "default") -> list[dict]:
    """The Nightscout profile documents of this seed's person ([] for xDrip)."""
    if uploader != "default":
        from cascade.demo.personal import personal_profile

        return personal_profile(seed, uploader)
    return profile_documents(seed)


@lru_cache(maxsize=_CACHE_DAYS)
def day_entries(day: date, seed: str, uploader: str = "default") -> tuple[dict, ...]:
    """Cached entries of one day, shared by the demo server: callers must not mutate them."""
    if uploader != "default":
        from cascade.demo.readings import personal_entries

        return tuple(personal_entries(day, seed, uploader))
    rng = day_rng(seed, day, "entries")
    records = _sgv_records(day, seed, rng)
    records += _meter_records(day, seed, rng, {r["date"] for r in records})
    records.sort(key=lambda record: record["date"])
    return tuple(records)


@lru_cache(maxsize=_CACHE_DAYS)
def day_treatments(day: date, seed: str, uploader: str = "default") -> tuple[dict, ...]:
    """Cached treatments of one day (callers must not mutate them)."""
    if uploader != "default":
        from cascade.demo.personal import local_treatments, utc_day_slice

        return tuple(utc_day_slice(day, seed, uploader, local_treatments))
    return tuple(treatment_records(day, seed))


@lru_cache(maxsize=_CACHE_DAYS)
def day_devicestatus(day: date, seed: str, uploader: str = "default") -> tuple[dict, ...]:
    """Cached devicestatus documents of one day (callers must not mutate them)."""
    if uploader != "default":
        from cascade.demo.personal import local_devicestatus, utc_day_slice

        return tuple(utc_day_slice(day, seed, uploader, local_devicestatus))
    boluses = [
        t
        for d in (date.fromordinal(day.toordinal() - 1), day)
        for t in day_treatments(d, seed)
        if "insulin" in t
    ]
    return tuple(devicestatus_records(day, seed, boluses))


def _segments(day: date, seed: str) -> list[tuple[int, int, int]]:
    """(start ms, end ms, sensor session) spans in which a sensor sends readings."""
    start, end = day_start_ms(day), day_start_ms(day) + DAY_MS
    session = sensor_session(day, seed)
    change = plan_for_day(day, seed).sensor_change
    if change is None:
        return [(start, end, session)]
    change_ms = start + int(change * 60_000)
    return [(start, change_ms, session - 1), (change_ms + WARMUP_MINUTES * 60_000, end, session)]


def _reading_times(day: date, seed: str) -> list[tuple[int, int]]:
    """(epoch ms, session) of each reading: a fixed 5-minute grid per sensor, a few seconds of
    jitter, and nothing inside the day's gaps."""
    gaps = [(a * 60_000, b * 60_000) for a, b in plan_for_day(day, seed).gaps]
    start = day_start_ms(day)
    mix = seed_number(seed, "jitter")
    times = []
    for low, high, session in _segments(day, seed):
        phase = seed_number(seed, f"phase:{session}") % READING_MS
        # The grid and jitter depend only on the slot number, so the two days meeting at
        # midnight agree on which day each reading belongs to.
        for slot in range((low - phase) // READING_MS - 1, (high - phase) // READING_MS + 2):
            ms = phase + slot * READING_MS + (slot * 2_654_435_761 + mix) % 6001 - 3000
            if low <= ms < high and not (gaps and any(a <= ms - start < b for a, b in gaps)):
                times.append((ms, session))
    return times


def _sgv_records(day: date, seed: str, rng: random.Random) -> list[dict]:
    curve = curve_for_day(day, seed)
    start = day_start_ms(day)
    prefix = f"{day.isoformat()}T"
    tag = id_tag(seed, "entries")
    gauss = rng.gauss
    biases: dict[int, float] = {}
    noise, last_minute, last_level = 0.0, None, 0.0
    records = []
    for index, (ms, session) in enumerate(_reading_times(day, seed)):
        if session not in biases:
            biases[session] = random.Random(f"{seed}:bias:{session}").gauss(0.0, 5.0)
        minute = (ms - start) / 60_000
        if last_minute is None:
            last_minute, last_level = minute - 5.0, curve(minute - 5.0)
        level = curve(minute)
        noise = 0.6 * noise + gauss(0.0, 3.5)
        smooth = level + biases[session]
        raw = smooth + noise
        # The arrow follows the trend; the first reading after a gap has none.
        gap = minute - last_minute
        direction = (
            "NONE"
            if gap > 7.5
            else _DIRECTIONS[bisect_left(_DIRECTION_BOUNDS, (level - last_level) / gap)]
        )
        last_minute, last_level = minute, level
        hours, rest = divmod(ms - start, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        seconds, millis = divmod(rest, 1000)
        stamp = f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"
        records.append(
            {
                "_id": f"{ms // 1000:08x}{tag}{millis * 4096 + index:06x}",  # see stamps.object_id
                "type": "sgv",
                "date": ms,
                "dateString": stamp,
                "sysTime": stamp,
                "sgv": min(max(round(raw), 40), 400),
                "direction": direction,
                "noise": 1,
                "filtered": round(smooth * 1000),
                "unfiltered": round(raw * 1000),
                "rssi": 100,
                "device": SGV_DEVICE,
                "utcOffset": 0,
            }
        )
    return records


def _meter_records(day: date, seed: str, rng: random.Random, sgv_dates: set[int]) -> list[dict]:
    """An occasional fingerstick (`mbg`) and, after a sensor start, a calibration (`cal`)."""
    stamper = DayStamper(day, seed, "meter", taken=sgv_dates)
    records = []
    if rng.random() < 0.4:
        ms = stamper.start + rng.randrange(420 * 60_000, 1320 * 60_000)
        level = curve_for_day(day, seed)((ms - stamper.start) / 60_000) * rng.gauss(1.0, 0.05)
        records.append({**_meter_base(stamper, ms), "type": "mbg", "mbg": round(level)})
    change = plan_for_day(day, seed).sensor_change
    if change is not None:
        ms = stamper.start + int((change + WARMUP_MINUTES + 3) * 60_000)
        records.append(
            {
                **_meter_base(stamper, ms),
                "type": "cal",
                "slope": round(rng.uniform(800, 1000), 2),
                "intercept": round(rng.uniform(25_000, 35_000), 1),
                "scale": 1,
            }
        )
    return records


def _meter_base(stamper: DayStamper, ms: int) -> dict:
    ms, stamp, oid = stamper.stamp(ms)
    return {
        "_id": oid,
        "date": ms,
        "dateString": stamp,
        "sysTime": stamp,
        "device": SGV_DEVICE,
        "utcOffset": 0,
    }
