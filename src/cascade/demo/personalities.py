"""Uploader personalities: who uploads the demo person's data, and in which clock.

Real Nightscout sites differ mostly by the app that uploads to them (Loop, Trio/oref,
AndroidAPS, xDrip). Each writes its own shapes, and each person lives in their own time zone;
the demo generator imitates both so that cascade is tested on data that looks like the world.
`default` is the generator's original clean AAPS-like person in UTC and stays byte-identical.

Local time: a personality's day plan (meals, dips, drift) is keyed by the person's LOCAL date
and its minutes are local wall-clock minutes, so breakfast happens around 07:30 wherever the
person lives, DST included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

UPLOADERS = ("default", "loop", "trio", "aaps", "xdrip")


@dataclass(frozen=True)
class Personality:
    """What distinguishes one uploader's site.

    `zone` is the canonical IANA zone the person lives in; `profile_timezone` is how the
    uploader spells it in the Nightscout profile (None: no profile at all).
    """

    name: str
    zone: str
    profile_timezone: str | None
    units: str  # profile units as the uploader writes them
    entered_by: str
    sgv_devices: tuple[str, ...]  # Loop uploads every reading once per device
    algorithm: bool  # a closed loop: temp basals and automatic boluses


PERSONALITIES = {
    "default": Personality("default", "UTC", "UTC", "mg/dl", "openaps://AndroidAPS", (), True),
    # Nightscout's own spelling of the IANA zone Etc/GMT+7 (= UTC-07:00, POSIX sign inverted).
    "loop": Personality(
        "loop",
        "Etc/GMT+7",
        "ETC/GMT+7",
        "mg/dL",
        "loop://iPhone",
        ("Dexcom G6 8N4K2Q", "com.dexcom.G6"),
        True,
    ),
    # A half-hour offset (+05:30) catches code that assumes whole hours.
    "trio": Personality(
        "trio", "Asia/Kolkata", "Asia/Kolkata", "mg/dl", "Trio", ("Dexcom G7",), True
    ),
    # A DST zone in odd case: AAPS users type zone names, Nightscout keeps them as typed.
    "aaps": Personality(
        "aaps",
        "Europe/Berlin",
        "europe/berlin",
        "mmol",
        "openaps://AndroidAPS",
        ("AndroidAPS-DexcomG6",),
        True,
    ),
    # A phone uploader: no profile, the zone is only visible as each entry's utcOffset.
    "xdrip": Personality("xdrip", "Etc/GMT-1", None, "mg/dl", "xdrip", ("xDrip-DexcomG6",), False),
}


def personality(uploader: str) -> Personality:
    """The personality called `uploader` (ValueError for an unknown name)."""
    try:
        return PERSONALITIES[uploader]
    except KeyError:
        raise ValueError(
            f"unknown uploader {uploader!r}; choose one of {', '.join(UPLOADERS)}"
        ) from None


def profile_zone(uploader: str) -> str | None:
    """The canonical IANA name of the zone in the uploader's profile (None: no profile)."""
    person = personality(uploader)
    return person.zone if person.profile_timezone is not None else None


@lru_cache(maxsize=8)
def zone_info(uploader: str) -> ZoneInfo:
    """The person's zone as a ZoneInfo."""
    return ZoneInfo(personality(uploader).zone)


def utc_offset_minutes(uploader: str, ms: float | None = None) -> int:
    """The person's UTC offset in minutes at `ms` (now if None), e.g. 60 for xdrip, -420 loop."""
    moment = datetime.now(UTC) if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
    offset = moment.astimezone(zone_info(uploader)).utcoffset() or timedelta()
    return round(offset.total_seconds() / 60)


@lru_cache(maxsize=4096)
def local_midnight_ms(day: date, uploader: str) -> int:
    """Epoch ms of 00:00 local time on `day` in the person's zone."""
    return local_ms(day, 0.0, uploader)


def local_ms(day: date, minute: float, uploader: str) -> int:
    """Epoch ms of the local wall-clock `minute` after midnight of `day` (a time skipped by a
    DST change is read with the offset before the change, like zoneinfo's fold=0)."""
    whole = int(minute)
    moment = datetime.combine(day, time(whole // 60 % 24, whole % 60), zone_info(uploader))
    if whole >= 1440:
        moment = datetime.combine(day + timedelta(days=1), time(0), zone_info(uploader))
        whole -= 1440
        moment = moment.replace(hour=whole // 60, minute=whole % 60)
    return round(moment.timestamp() * 1000 + (minute - int(minute)) * 60_000)


def local_day_minute(ms: float, uploader: str) -> tuple[date, float]:
    """The person's local date and wall-clock minute after midnight at instant `ms`."""
    moment = datetime.fromtimestamp(ms / 1000, zone_info(uploader))
    minute = moment.hour * 60 + moment.minute + (moment.second + moment.microsecond / 1e6) / 60
    return moment.date(), minute


def local_days(start_ms: float, end_ms: float, uploader: str) -> list[date]:
    """The local dates that overlap [start_ms, end_ms)."""
    first = local_day_minute(start_ms, uploader)[0]
    last = local_day_minute(max(end_ms - 1, start_ms), uploader)[0]
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
