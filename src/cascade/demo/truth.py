"""The pump's truth: the insulin a demo personality actually received, as a timeline.

Tests compare the lake's daily insulin with this, so it is computed from the commands
(`cascade.demo.events`) by the pump's own rules, independently of the uploaded records:

- basal runs at the profile's scheduled rate (`therapy.BASAL`, local wall-clock time);
- a temp basal replaces it until its programmed duration ends, the next temp basal starts,
  or the pump is suspended, whichever comes first;
- an absolute temp delivers its U/h; an AAPS percent temp delivers scheduled × p / 100 at
  every moment (`percent: 40` in Nightscout means p = 140; a rate-only record's rate IS p);
- nothing is delivered while suspended;
- boluses are instants: manual (`bolus`) or given by the algorithm (`automatic_bolus`).

xDrip has no pump in the data (pens): its truth is the recorded boluses only.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from cascade.demo.events import DayEvents, TempBasal, day_events
from cascade.demo.personalities import (
    local_day_minute,
    local_days,
    local_midnight_ms,
    local_ms,
    personality,
)
from cascade.demo.therapy import BASAL, schedule_value

_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Delivery:
    """Insulin delivered from `start_ms` to `end_ms` (equal for a bolus). `kind` is "basal",
    "bolus" (manual) or "automatic_bolus"."""

    start_ms: float
    end_ms: float
    units: float
    kind: str


def delivered_insulin(seed: str, uploader: str, start_ms: float, end_ms: float) -> list[Delivery]:
    """Everything delivered in [start_ms, end_ms), oldest first; basal segments that cross a
    bound are cut and their units prorated."""
    if uploader == "default":
        raise ValueError("the default personality has no modelled pump truth")
    result = []
    for day in local_days(start_ms, end_ms, uploader):
        for item in day_deliveries(day, seed, uploader):
            if item.start_ms == item.end_ms:
                if start_ms <= item.start_ms < end_ms:
                    result.append(item)
                continue
            low, high = max(item.start_ms, start_ms), min(item.end_ms, end_ms)
            if low < high:
                share = (high - low) / (item.end_ms - item.start_ms)
                result.append(Delivery(low, high, item.units * share, item.kind))
    return result


def temp_end_ms(temp: TempBasal, seed: str, uploader: str) -> int:
    """When a temp basal really stopped: its duration, the next temp, or a suspend."""
    stops = _stops(local_day_minute(temp.ms, uploader)[0], seed, uploader)
    end = temp.ms + round(temp.duration * 60_000)
    index = bisect_right(stops, temp.ms)
    return min(end, stops[index]) if index < len(stops) else end


@lru_cache(maxsize=1200)
def _stops(day: date, seed: str, uploader: str) -> list[int]:
    """Sorted starts of the temps and suspends of `day` and the day after: what ends a temp."""
    events = [day_events(d, seed, uploader) for d in (day, day + timedelta(1))]
    return sorted(
        [t.ms for e in events for t in e.temps] + [s.ms for e in events for s in e.suspends]
    )


def temp_rate(temp: TempBasal, scheduled: float) -> float:
    """U/h a temp basal delivers while the schedule says `scheduled` U/h."""
    if temp.percent_of_scheduled is None:
        return temp.rate or 0.0
    return scheduled * temp.percent_of_scheduled / 100


@lru_cache(maxsize=1200)
def day_deliveries(day: date, seed: str, uploader: str) -> tuple[Delivery, ...]:
    """The deliveries of one local day: basal segments cut at local midnight, and boluses."""
    events = day_events(day, seed, uploader)
    items = [
        Delivery(b.ms, b.ms, b.units, "automatic_bolus" if b.automatic else "bolus")
        for b in events.boluses
    ]
    if personality(uploader).algorithm:
        items += _basal(day, seed, uploader, events)
    items.sort(key=lambda d: d.start_ms)
    return tuple(items)


def _basal(day: date, seed: str, uploader: str, events: DayEvents) -> list[Delivery]:
    start, end = local_midnight_ms(day, uploader), local_midnight_ms(day + timedelta(1), uploader)
    before = day_events(day - timedelta(1), seed, uploader)
    runs = [(t.ms, temp_end_ms(t, seed, uploader), t) for t in (*before.temps, *events.temps)]
    runs = [r for r in runs if r[1] > start]
    suspends = [(s.ms, s.end_ms) for s in (*before.suspends, *events.suspends)]
    cuts = {start, end}
    cuts.update(local_ms(day, minute, uploader) for minute, _ in BASAL)
    for low, high, _ in runs:
        cuts.update((low, high))
    for low, high in suspends:
        cuts.update((low, high))
    points = sorted(c for c in cuts if start <= c <= end)
    starts = [r[0] for r in runs]
    segments = []
    for low, high in zip(points, points[1:], strict=False):
        if any(a <= low < b for a, b in suspends):
            rate = 0.0
        else:
            rate = schedule_value(BASAL, local_day_minute(low, uploader)[1])
            index = bisect_right(starts, low) - 1
            if index >= 0 and low < runs[index][1]:
                rate = temp_rate(runs[index][2], rate)
        segments.append(Delivery(low, high, rate * (high - low) / _HOUR_MS, "basal"))
    return segments
