"""CGM entries of a personality for one UTC day, in the uploader's own shape.

Readings sit on the same physical 5-minute sensor grid as the default person (gaps and sensor
warm-ups included); the glucose is the day plan read in the person's local time. Loop sites get
every reading twice, ~1 s apart, once per device string (Loop's own upload and the Dexcom
app's), with fractional epoch ms the way Loop writes `date`.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from datetime import UTC, date, datetime, timedelta

from cascade.demo.events import glucose_at
from cascade.demo.generator import _DIRECTION_BOUNDS, _DIRECTIONS, _reading_times
from cascade.demo.personalities import personality, utc_offset_minutes
from cascade.demo.stamps import id_tag, iso_ms

# Loop's trend numbers (Nightscout's `trend`), in the order of generator._DIRECTIONS.
_TRENDS = (7, 6, 5, 4, 3, 2, 1)


def personal_entries(day: date, seed: str, uploader: str) -> list[dict]:
    """The sgv entries of one UTC day, oldest first."""
    person = personality(uploader)
    rng = random.Random(f"{seed}:{day.isoformat()}:{uploader}:entries")
    tags = [id_tag(seed, f"entries:{uploader}:{n}") for n in range(len(person.sgv_devices))]
    biases: dict[int, float] = {}
    noise, last_ms = 0.0, None
    records = []
    for index, (ms, session) in enumerate(_reading_times(day, seed)):
        if session not in biases:
            biases[session] = random.Random(f"{seed}:bias:{session}").gauss(0.0, 5.0)
        level = glucose_at(ms, seed, uploader)
        if last_ms is None or ms - last_ms > 450_000:
            direction = "NONE"
        else:
            slope = (level - glucose_at(last_ms, seed, uploader)) / ((ms - last_ms) / 60_000)
            direction = _DIRECTIONS[bisect_left(_DIRECTION_BOUNDS, slope)]
        last_ms = ms
        noise = 0.6 * noise + rng.gauss(0.0, 3.5)
        sgv = min(max(round(level + biases[session] + noise), 40), 400)
        for copy, device in enumerate(person.sgv_devices):
            at: float = ms
            if uploader == "loop":  # Loop's dates carry sub-millisecond digits
                at = round(ms + (rng.uniform(500, 1500) if copy else 0.0) + rng.random(), 4)
            oid = f"{int(at) // 1000:08x}{tags[copy]}{index:06x}"
            records.append(_shape(uploader, oid, at, sgv, direction, device))
    return records


def _shape(uploader: str, oid: str, at: float, sgv: int, direction: str, device: str) -> dict:
    stamp = iso_ms(int(at))
    record = {"_id": oid, "type": "sgv", "sgv": sgv, "date": at, "dateString": stamp}
    if uploader == "loop":
        record["trend"] = _TRENDS[_DIRECTIONS.index(direction)] if direction != "NONE" else 0
    record.update({"direction": direction, "device": device, "sysTime": stamp, "utcOffset": 0})
    if uploader == "xdrip":
        # xDrip writes local time with its offset; Nightscout derives utcOffset from it.
        offset = utc_offset_minutes(uploader, at)
        local = datetime.fromtimestamp(at / 1000, UTC) + timedelta(minutes=offset)
        sign, whole = ("+" if offset >= 0 else "-"), abs(offset)
        record["dateString"] = (
            f"{local.strftime('%Y-%m-%dT%H:%M:%S')}.{int(at) % 1000:03d}"
            f"{sign}{whole // 60:02d}{whole % 60:02d}"
        )
        record.update(
            noise=1, filtered=sgv * 1000, unfiltered=sgv * 1000, rssi=100, utcOffset=offset
        )
    return record
