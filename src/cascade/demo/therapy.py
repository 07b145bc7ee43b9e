"""The generated person's therapy settings: the Nightscout profile and its schedules."""

from __future__ import annotations

from cascade.demo.stamps import id_tag, object_id, parse_iso_ms

ENTERED_BY = "openaps://AndroidAPS"
PROFILE_START = "2020-01-01T00:00:00.000Z"
DIA_HOURS = 5
# Profile schedules: (minute after midnight the value starts, value).
BASAL = ((0, 0.8), (180, 1.0), (420, 0.9), (720, 0.85), (1080, 0.95), (1320, 0.8))
SENS = ((0, 50), (360, 45), (720, 50))
CARBRATIO = ((0, 10), (360, 8), (660, 10), (1020, 11))
TARGET_LOW = ((0, 100),)
TARGET_HIGH = ((0, 120),)


def schedule_value(schedule: tuple[tuple[int, float], ...], minute: float) -> float:
    """The value of a profile schedule in force at `minute` after midnight."""
    value = schedule[0][1]
    for start, candidate in schedule:
        if start <= minute:
            value = candidate
    return value


def profile_documents(seed: str) -> list[dict]:
    """One Nightscout profile document with a single `Default` profile."""
    ms = parse_iso_ms(PROFILE_START) or 0
    return [
        {
            "_id": object_id(ms, id_tag(seed, "profile"), 0),
            "defaultProfile": "Default",
            "startDate": PROFILE_START,
            "created_at": PROFILE_START,
            "mills": ms,
            "units": "mg/dl",
            "store": {
                "Default": {
                    "timezone": "UTC",
                    "units": "mg/dl",
                    "dia": DIA_HOURS,
                    "carbs_hr": 20,
                    "delay": 20,
                    "basal": _schedule(BASAL),
                    "sens": _schedule(SENS),
                    "carbratio": _schedule(CARBRATIO),
                    "target_low": _schedule(TARGET_LOW),
                    "target_high": _schedule(TARGET_HIGH),
                }
            },
        }
    ]


def _schedule(pairs: tuple[tuple[int, float], ...]) -> list[dict]:
    return [
        {"time": f"{start // 60:02d}:{start % 60:02d}", "value": value, "timeAsSeconds": start * 60}
        for start, value in pairs
    ]
