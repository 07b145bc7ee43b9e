"""Timestamps and record ids in the shapes Nightscout stores."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, date, datetime

from cascade.sources.nightscout.records import iso_ms

__all__ = ["iso_ms"]  # re-exported: the demo writes times as the source reads them

DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_start_ms(day: date) -> int:
    """Epoch milliseconds of 00:00 UTC on `day`."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS


def day_of_ms(ms: int) -> date:
    """The UTC day an epoch-millisecond instant falls on."""
    return date.fromordinal(_EPOCH_ORDINAL + ms // DAY_MS)


def parse_iso_ms(text: str) -> int | None:
    """Epoch ms of an ISO 8601 instant (no offset means UTC), or None if it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def id_tag(seed: str, collection: str) -> str:
    """Ten hex digits that keep ids of different seeds and collections apart."""
    return hashlib.sha1(f"{seed}:{collection}".encode()).hexdigest()[:10]


def object_id(ms: int, tag: str, counter: int) -> str:
    """A 24-hex id laid out like a MongoDB ObjectId: seconds, a source tag, a counter.

    `counter` must be unique among the records of one tag within a second.
    """
    return f"{ms // 1000:08x}{tag}{counter % 0x1000000:06x}"


class DayStamper:
    """Gives one day's records of one collection unique times and ids."""

    def __init__(self, day: date, seed: str, collection: str, taken: Iterable[int] = ()) -> None:
        self.start = day_start_ms(day)
        self.tag = id_tag(seed, collection)
        self.taken: set[int] = set(taken)

    def stamp(self, ms: int) -> tuple[int, str, str]:
        """(ms, ISO time, id) for an event at `ms`, moved on a second while the time is taken,
        because clients page on the time and equal times can hide a record."""
        while ms in self.taken:
            ms += 1000
        self.taken.add(ms)
        return ms, iso_ms(ms), object_id(ms, self.tag, (ms % 1000) * 4096 + len(self.taken))
