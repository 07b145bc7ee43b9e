"""Where the demo server's records come from: a file loaded into memory, or the generator."""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from cascade.demo.generator import day_devicestatus, day_entries, day_treatments, profile
from cascade.demo.query import (
    COLLECTIONS,
    Collection,
    Condition,
    KeyRange,
    Query,
    in_range,
    parse_query,
    split_key_range,
    take,
    with_default_window,
)
from cascade.demo.stamps import DAY_MS, day_of_ms, day_start_ms, iso_ms, parse_iso_ms


class Store(Protocol):
    """A site's records, scanned newest first by a collection's date field."""

    def reference_ms(self, name: str) -> int:
        """The instant Nightscout's default four-day window ends at."""

    def scan(self, name: str, key_range: KeyRange) -> Iterator[dict]:
        """Records of a collection whose date field lies in `key_range`, newest first."""

    def profiles(self) -> list[dict]:
        """The profile documents."""


def select(
    store: Store, name: str, params: Mapping[str, str], entry_type: str | None = None
) -> list[dict]:
    """Answer a v1 list request (`/api/v1/<name>.json?<params>`) the way Nightscout does."""
    collection = COLLECTIONS[name]
    query = parse_query(params, collection)
    if entry_type is not None:
        query = Query((*query.conditions, Condition("type", "$eq", entry_type)), query.count)
    query = with_default_window(query, collection, store.reference_ms(name))
    key_range, rest = split_key_range(query, collection.date_field)
    return take(store.scan(name, key_range), rest, query.count)


def _has_key(value: Any, collection: Collection) -> bool:
    if collection.use_epoch:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


class FileStore:
    """Records loaded once, sorted by date field and sliced with bisect.

    Records without a usable date field are left out: no dated query could match them.
    """

    def __init__(self, collections: Mapping[str, list[dict]]) -> None:
        self._sorted: dict[str, tuple[list, list[dict]]] = {}
        for name, collection in COLLECTIONS.items():
            key = collection.date_field
            kept = [r for r in collections.get(name, []) if _has_key(r.get(key), collection)]
            kept.sort(key=lambda r, k=key: (r[k], str(r.get("_id", ""))))
            self._sorted[name] = ([r[key] for r in kept], kept)
        self._profiles = list(collections.get("profile", []))

    def reference_ms(self, name: str) -> int:
        """The newest record's time, so the default window shows the file's last four days."""
        keys = self._sorted[name][0]
        if not keys:
            return round(time.time() * 1000)
        newest = keys[-1]
        if isinstance(newest, str):
            return parse_iso_ms(newest) or round(time.time() * 1000)
        return int(newest)

    def scan(self, name: str, key_range: KeyRange) -> Iterator[dict]:
        """Records in the range, newest first."""
        keys, records = self._sorted[name]
        low, high = _slice(keys, key_range)
        for index in range(high - 1, low - 1, -1):
            yield records[index]

    def profiles(self) -> list[dict]:
        """The file's profile documents."""
        return self._profiles


# the UTC days a live site is asked for again and again (today, and yesterday within an
# hourly refresh's look-back), kept by each site: however many sites a server has, an hourly
# refresh of all of them generates nothing again, as a database serves them from memory
RECENT_DAYS = 2


class GeneratedStore:
    """A site whose history is generated on demand, one cached UTC day at a time.

    It holds `history_days` of data up to `now` (the wall clock if not fixed), nothing later.
    Its RECENT_DAYS stay in its own cache; older days share one of a few hundred days.
    """

    def __init__(
        self,
        seed: str = "demo",
        now: datetime | None = None,
        history_days: int = 1095,
        uploader: str = "default",
    ) -> None:
        self.seed = seed
        self.uploader = uploader
        # A naive `now` is taken as UTC, like every other time here.
        self._now = now.replace(tzinfo=UTC) if now and now.tzinfo is None else now
        self.history_days = history_days
        self._recent: dict[tuple[str, date], tuple[list, tuple[dict, ...]]] = {}

    def now_ms(self) -> int:
        """The site's present: the fixed `now`, or the wall clock."""
        if self._now is None:
            return round(time.time() * 1000)
        return round(self._now.timestamp() * 1000)

    def reference_ms(self, name: str) -> int:
        """Now: a live site's default window is its last four days."""
        return self.now_ms()

    def scan(self, name: str, key_range: KeyRange) -> Iterator[dict]:
        """Records in the range up to now, newest first, generating only the days it reaches."""
        use_epoch = COLLECTIONS[name].use_epoch

        def to_key(ms: int) -> Any:
            return ms if use_epoch else iso_ms(ms)

        now = self.now_ms()
        key_range = _until(key_range, to_key(now))
        after_low = KeyRange(low=key_range.low, low_inclusive=key_range.low_inclusive)
        before_high = KeyRange(high=key_range.high, high_inclusive=key_range.high_inclusive)
        today = day_of_ms(now)
        for back in range(self.history_days + 1):
            day = today - timedelta(days=back)
            start = day_start_ms(day)
            if not in_range(to_key(start + DAY_MS - 1), after_low):
                return
            if not in_range(to_key(start), before_high):
                continue
            keys, records = self._day(name, day, today)
            low, high = _slice(keys, key_range)
            for index in range(high - 1, low - 1, -1):
                yield records[index]

    def _day(self, name: str, day: date, today: date) -> tuple[list, tuple[dict, ...]]:
        if (today - day).days >= RECENT_DAYS:
            return _generated_day(name, day, self.seed, self.uploader)
        recent = self._recent  # a new dict when days pass: requests run in threads
        if (name, day) not in recent:
            recent = {k: v for k, v in recent.items() if (today - k[1]).days < RECENT_DAYS}
            recent[name, day] = _generated_day(name, day, self.seed, self.uploader)
            self._recent = recent
        return recent[name, day]

    def profiles(self) -> list[dict]:
        """The generated person's profile."""
        return profile(self.seed, self.uploader)


_DAY_RECORDS: dict[str, Callable[[date, str, str], tuple[dict, ...]]] = {
    "entries": day_entries,
    "treatments": day_treatments,
    "devicestatus": day_devicestatus,
}


@lru_cache(maxsize=400)
def _generated_day(
    name: str, day: date, seed: str, uploader: str = "default"
) -> tuple[list, tuple[dict, ...]]:
    """A generated day's records of one collection with their sorted date keys."""
    records = _DAY_RECORDS[name](day, seed, uploader)
    key = COLLECTIONS[name].date_field
    return [record[key] for record in records], records


def _slice(keys: list, key_range: KeyRange) -> tuple[int, int]:
    """The index span of sorted `keys` that lies in the range."""
    low, high = 0, len(keys)
    if key_range.low is not None:
        low = (bisect_left if key_range.low_inclusive else bisect_right)(keys, key_range.low)
    if key_range.high is not None:
        high = (bisect_right if key_range.high_inclusive else bisect_left)(keys, key_range.high)
    return low, high


def _until(key_range: KeyRange, now_key: Any) -> KeyRange:
    """The range cut off at now: a live site has no records from the future."""
    if key_range.high is not None and key_range.high <= now_key:
        return key_range
    return replace(key_range, high=now_key, high_inclusive=True)
