"""Devicestatus of a personality for one local day: one document per 5-minute loop cycle.

Shapes follow what each uploader sends to `/api/v1/devicestatus`:
- Loop: `loop` (iob, cob, predicted, enacted when a temp or automatic bolus was set),
  `pump` with a top-level `suspended`, `uploader`, `override`.
- Trio and AAPS (oref): `openaps` (iob, suggested with predBGs, enacted), `pump.status`.
- xDrip: only the phone's battery.
Insulin on board is computed from the pump's truth, so it agrees with the treatments.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import numpy as np

from cascade.demo.devicestatus import _insulin_left, _phone_battery
from cascade.demo.events import CYCLE_MS, cycle_times, day_events, glucose_at
from cascade.demo.personalities import local_day_minute, local_midnight_ms, personality
from cascade.demo.stamps import id_tag, iso_ms, object_id
from cascade.demo.therapy import BASAL, CARBRATIO, DIA_HOURS, SENS, schedule_value
from cascade.demo.truth import day_deliveries, temp_end_ms, temp_rate

_DEVICES = {"loop": "loop://iPhone", "trio": "Trio", "aaps": "openaps://AndroidAPS"}
_BINS_BEFORE = DIA_HOURS * 12
_KERNEL = np.array([_insulin_left(j * 5.0) for j in range(_BINS_BEFORE)])


def personal_devicestatus(day: date, seed: str, uploader: str) -> list[dict]:
    """The status documents of one local day, oldest first."""
    start = local_midnight_ms(day, uploader)
    end = local_midnight_ms(day + timedelta(1), uploader)
    cycles = cycle_times(start, end, seed)
    tag = id_tag(seed, f"devicestatus:{uploader}")
    if not personality(uploader).algorithm:
        return [
            {
                "_id": object_id(ms, tag, i),
                "device": "xDrip",
                "created_at": iso_ms(ms),
                "uploader": {"battery": _phone_battery(local_day_minute(ms, uploader)[1])},
            }
            for i, ms in enumerate(cycles)
        ]
    events = [day_events(day - timedelta(n), seed, uploader) for n in (1, 0)]
    iob, basal_iob = _insulin_on_board(day, seed, uploader, cycles)
    enacted = {t.ms: t for e in events for t in e.temps}
    smbs = {b.ms - 2_000: b.units for e in events for b in e.boluses if b.automatic}
    suspends = [(s.ms, s.end_ms) for e in events for s in e.suspends]
    carbs = [(c.ms, c.grams) for e in events for c in e.carbs]
    carbs += [(b.ms, b.carbs) for e in events for b in e.boluses if b.carbs]
    changes = [
        ms for n in range(4) for ms in day_events(day - timedelta(n), seed, uploader).site_changes
    ]
    override = random.Random(f"{seed}:{day}:{uploader}:override").uniform(900, 1200)
    records = []
    for i, ms in enumerate(cycles):
        minute = local_day_minute(ms, uploader)[1]
        level = glucose_at(ms, seed, uploader)
        cob = sum(g * (1 - (ms - at) / 10_800_000) for at, g in carbs if 0 <= ms - at < 10_800_000)
        sens = schedule_value(SENS, minute)
        eventual = min(
            max(level - iob[i] * sens + cob * sens / schedule_value(CARBRATIO, minute), 39), 400
        )
        predicted = [round(level + (eventual - level) * (1 - math.exp(-k / 8))) for k in range(13)]
        temp = enacted.get(ms)
        state = {
            "stamp": iso_ms(ms),
            "iob": round(iob[i], 2),
            "basal_iob": round(basal_iob[i], 2),
            "cob": round(cob, 1),
            "level": round(level),
            "eventual": round(eventual),
            "predicted": predicted,
            "scheduled": schedule_value(BASAL, minute),
            "temp": temp,
            "temp_minutes": (temp_end_ms(temp, seed, uploader) - ms) / 60_000 if temp else 0,
            "smb": smbs.get(ms),
            "suspended": any(a <= ms < b for a, b in suspends),
            "reservoir": _reservoir(changes, ms),
            "override": override <= minute < override + 60,
            "battery": _phone_battery(minute),
        }
        shape = _loop_status if uploader == "loop" else _oref_status
        records.append({"_id": object_id(ms, tag, i), **shape(uploader, state)})
    return records


def _insulin_on_board(day, seed, uploader, cycles):
    """(total, basal) IOB at each cycle: deliveries binned per 5 minutes, convolved with the
    insulin action curve; basal counts only its difference from the schedule, like oref."""
    first = cycles[0] - _BINS_BEFORE * CYCLE_MS
    size = len(cycles) + _BINS_BEFORE
    total, basal = np.zeros(size), np.zeros(size)
    for back in (1, 0):
        for item in day_deliveries(day - timedelta(back), seed, uploader):
            index = int((item.start_ms - first) // CYCLE_MS) + 1
            if not 0 <= index < size:
                continue
            if item.kind == "basal":
                minute = local_day_minute(item.start_ms, uploader)[1]
                hours = (item.end_ms - item.start_ms) / 3_600_000
                excess = item.units - schedule_value(BASAL, minute) * hours
                basal[index] += excess
                total[index] += excess
            else:
                total[index] += item.units

    def on_board(doses):
        return np.convolve(doses, _KERNEL)[_BINS_BEFORE : _BINS_BEFORE + len(cycles)]

    return on_board(total).tolist(), on_board(basal).tolist()


def _reservoir(changes: list[int], ms: int) -> float:
    changed = max((at for at in changes if at <= ms), default=None)
    return 120.0 if changed is None else round(max(200 - 1.9 * (ms - changed) / 3_600_000, 5), 1)


def _loop_status(uploader: str, s: dict) -> dict:
    stamp, loop = s["stamp"], {"name": "Loop", "version": "3.4.4", "timestamp": s["stamp"]}
    loop["iob"] = {"iob": s["iob"], "timestamp": stamp}
    loop["cob"] = {"cob": s["cob"], "timestamp": stamp}
    loop["predicted"] = {"startDate": stamp, "values": s["predicted"]}
    if s["temp"] is not None or s["smb"] is not None:
        temp = s["temp"]
        loop["enacted"] = {
            "rate": temp.rate if temp else s["scheduled"],
            "duration": temp.duration if temp else 30,
            "timestamp": stamp,
            "received": True,
            "bolusVolume": s["smb"] or 0,
        }
    override = {"active": s["override"], "timestamp": stamp}
    if s["override"]:
        override.update(name="Running", multiplier=0.8)
    return {
        "device": _DEVICES[uploader],
        "created_at": stamp,
        "loop": loop,
        "pump": {
            "clock": stamp,
            "pumpID": "1F2E3D",
            "manufacturer": "Insulet",
            "model": "Dash",
            "reservoir": s["reservoir"],
            "suspended": s["suspended"],
            "bolusing": False,
            "battery": {"percent": 100},
        },
        "uploader": {"name": "iPhone", "battery": s["battery"]},
        "override": override,
    }


def _oref_status(uploader: str, s: dict) -> dict:
    stamp, level = s["stamp"], s["level"]
    predicted = s["predicted"]
    suggested = {
        "bg": level,
        "COB": s["cob"],
        "IOB": s["iob"],
        "eventualBG": s["eventual"],
        "predBGs": {
            "IOB": predicted,
            "ZT": [round(level - (level - 100) * k / 48) for k in range(len(predicted))],
            "COB": [v + round(s["cob"] * k / 50) for k, v in enumerate(predicted)],
            "UAM": [max(v - 5, 39) for v in predicted],
        },
        "timestamp": stamp,
        "deliverAt": stamp,
        "reason": f"COB: {s['cob']}, Dev: 0, BG: {level}, ISF: 50, eventualBG {s['eventual']}",
    }
    temp = s["temp"]
    openaps = {
        "iob": {"iob": s["iob"], "basaliob": s["basal_iob"], "activity": 0.01, "time": stamp},
        "suggested": suggested,
    }
    if temp is not None:
        suggested.update(rate=round(temp_rate(temp, s["scheduled"]), 2), duration=temp.duration)
    if s["smb"] is not None:
        suggested["units"] = s["smb"]
    if temp is not None or s["smb"] is not None:
        openaps["enacted"] = {
            key: suggested[key] for key in ("rate", "duration", "units") if key in suggested
        } | {"timestamp": stamp, "received": True, "bg": level, "reason": suggested["reason"]}
    return {
        "device": _DEVICES[uploader],
        "created_at": stamp,
        "openaps": openaps,
        "pump": {
            "clock": stamp,
            "reservoir": s["reservoir"],
            "battery": {"percent": 80},
            "status": {
                "status": "suspended" if s["suspended"] else "normal",
                "bolusing": False,
                "suspended": s["suspended"],
                "timestamp": stamp,
            },
        },
        "uploader": {"battery": s["battery"]},
    }
