"""A personality's records per UTC day, and its profile.

The generator and the demo server work in UTC days; a personality's treatments and statuses
are made per LOCAL day. A UTC day is therefore cut from the local days that overlap it (any
zone is within ±14 h, so the day before, the day itself and the day after).
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

from cascade.demo.personalities import personality
from cascade.demo.stamps import DAY_MS, day_start_ms, id_tag, iso_ms, object_id
from cascade.demo.status import personal_devicestatus
from cascade.demo.therapy import profile_documents
from cascade.demo.uploads import personal_treatments

MMOL = 18.0182


@lru_cache(maxsize=1200)
def local_treatments(day: date, seed: str, uploader: str) -> tuple[dict, ...]:
    """Cached treatments of one local day (callers must not mutate them)."""
    return tuple(personal_treatments(day, seed, uploader))


@lru_cache(maxsize=1200)
def local_devicestatus(day: date, seed: str, uploader: str) -> tuple[dict, ...]:
    """Cached devicestatus of one local day (callers must not mutate them)."""
    return tuple(personal_devicestatus(day, seed, uploader))


def utc_day_slice(day: date, seed: str, uploader: str, by_local_day) -> list[dict]:
    """The records of `by_local_day` whose `created_at` falls on UTC `day`, oldest first."""
    low, high = iso_ms(day_start_ms(day)), iso_ms(day_start_ms(day) + DAY_MS)
    records = [
        record
        for back in (1, 0, -1)
        for record in by_local_day(day - timedelta(back), seed, uploader)
        if low <= record["created_at"] < high
    ]
    records.sort(key=lambda record: (record["created_at"], record["_id"]))
    return records


def personal_profile(seed: str, uploader: str) -> list[dict]:
    """The profile documents as the uploader writes them ([] for xDrip: it has none)."""
    person = personality(uploader)
    if person.profile_timezone is None:
        return []
    documents = profile_documents(seed)
    for document in documents:
        document["_id"] = object_id(document["mills"], id_tag(seed, f"profile:{uploader}"), 0)
        document["units"] = person.units
        document["enteredBy"] = person.entered_by
        for store in document["store"].values():
            store["timezone"] = person.profile_timezone
            store["units"] = person.units
            if person.units == "mmol":
                for key in ("sens", "target_low", "target_high"):
                    for item in store[key]:
                        item["value"] = round(item["value"] / MMOL, 1)
    return documents
