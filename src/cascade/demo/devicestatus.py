"""The loop's device status every 30 minutes: pump, batteries, insulin on board."""

from __future__ import annotations

from datetime import date

from cascade.demo.model import SITE_DAYS, plan_for_day, seed_number
from cascade.demo.stamps import DayStamper, day_start_ms, parse_iso_ms
from cascade.demo.therapy import DIA_HOURS

PUMP_DEVICE = "openaps://samsung SM-G970F"


def devicestatus_records(day: date, seed: str, boluses: list[dict]) -> list[dict]:
    """One loop status every 30 minutes: pump clock, reservoir, batteries, insulin on board."""
    stamps = DayStamper(day, seed, "devicestatus")
    doses = [(parse_iso_ms(b["created_at"]) or 0, b["insulin"]) for b in boluses]
    mix = seed_number(seed, "devicestatus")
    site_changes = _site_changes(day, seed)
    records = []
    for slot in range(48):
        ms, stamp, oid = stamps.stamp(
            stamps.start + slot * 1_800_000 + 15_000 + (slot * 7919 + mix) % 10_000
        )
        minute = (ms - stamps.start) / 60_000
        iob = sum(units * _insulin_left((ms - at) / 60_000) for at, units in doses if at <= ms)
        changed = max((at for at in site_changes if at <= ms), default=None)
        records.append(
            {
                "_id": oid,
                "created_at": stamp,
                "device": PUMP_DEVICE,
                "pump": {
                    "clock": stamp,
                    "reservoir": _reservoir(changed, ms),
                    "battery": {"percent": _pump_battery(day, seed, minute)},
                    "status": {
                        "status": "normal",
                        "bolusing": False,
                        "suspended": False,
                        "timestamp": stamp,
                    },
                },
                "uploader": {"battery": _phone_battery(minute)},
                "openaps": {"iob": {"iob": round(iob, 2), "timestamp": stamp}},
            }
        )
    return records


def _insulin_left(minutes: float) -> float:
    """Fraction of a bolus still active `minutes` after it (a smooth fall to 0 at DIA)."""
    x = minutes / (DIA_HOURS * 60)
    if x < 0 or x >= 1:
        return 0.0
    return (1 - x) ** 2 * (1 + 2 * x)


def _site_changes(day: date, seed: str) -> list[int]:
    """Epoch ms of the site changes from three days before `day` to the end of `day`."""
    changes = []
    for back in range(SITE_DAYS + 1):
        earlier = date.fromordinal(day.toordinal() - back)
        minute = plan_for_day(earlier, seed).site_change
        if minute is not None:
            changes.append(day_start_ms(earlier) + int(minute * 60_000))
    return changes


def _reservoir(changed: int | None, ms: int) -> float:
    """Units left: 200 U at the last site change, then about 1.9 U an hour."""
    if changed is None:
        return 120.0
    return round(max(200 - 1.9 * (ms - changed) / 3_600_000, 5.0), 1)


def _pump_battery(day: date, seed: str, minute: float) -> int:
    days_in = (day.toordinal() + seed_number(seed, "battery")) % 14
    return max(100 - days_in * 6 - int(minute // 480), 10)


def _phone_battery(minute: float) -> int:
    """Charged overnight, drained over the day."""
    hours = minute / 60
    if hours < 7:
        return 100
    return max(100 - int((hours - 7) * 4.2), 15)
