"""The Nightscout dlt source: entries, treatments, devicestatus and profile into `raw`.

Every resource merges on (subject_id, record_key), where record_key is Nightscout's `_id` or,
when that is missing, the natural key (date + type): re-running any window never duplicates.
Every page is yielded as a typed Arrow table (fast, stable types); devicestatus and profile
keep each nested document as a JSON text column. Records that cannot be keyed at all go to
`raw.quarantine`, counted.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dlt
import pyarrow as pa
from dlt.sources import DltResource

from cascade.sources.nightscout.helpers import NightscoutClient, Window
from cascade.sources.nightscout.records import Batch, iso_to_ms, to_batch
from cascade.sources.nightscout.settings import (
    DATE_FIELD,
    DEVICESTATUS_FIELDS,
    ENTRY_FIELDS,
    PRIMARY_KEY,
    PROFILE_FIELDS,
    TREATMENT_FIELDS,
)

COLLECTIONS = ("entries", "treatments", "devicestatus", "profile")
FIELDS = {
    "entries": ENTRY_FIELDS,
    "treatments": TREATMENT_FIELDS,
    "devicestatus": DEVICESTATUS_FIELDS,
    "profile": PROFILE_FIELDS,
}
# nested documents: each unknown top-level field becomes a JSON text column of its own
DOCUMENTS = ("devicestatus", "profile")
# A page source yields the records of one collection, a page (list) at a time.
Pages = Callable[[str], Iterator[list[dict]]]


@dataclass
class FetchStats:
    """What the source saw, per collection: fetched rows, bad records, duplicates, seconds."""

    fetched: dict[str, int] = field(default_factory=dict)
    issues: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    on_page: Callable[[str, int], None] | None = None

    @property
    def bad_records(self) -> int:
        return sum(self.issues.values()) + sum(self.quarantined.values())

    def add(self, collection: str, fetched: int, issues: int, quarantined: int) -> None:
        for counter, value in ((self.fetched, fetched), (self.issues, issues)):
            counter[collection] = counter.get(collection, 0) + value
        self.quarantined[collection] = self.quarantined.get(collection, 0) + quarantined
        if self.on_page:
            self.on_page(collection, fetched)


def _quarantine_table(rows: list[dict], subject_id: str | None) -> pa.Table:
    records = [json.dumps(r["record"], default=str, sort_keys=True) for r in rows]
    return pa.table(
        {
            "subject_id": [
                subject_id or str(r["record"].get("subject_id") or "unknown") for r in rows
            ],
            "record_key": [
                hashlib.sha1(f"{r['collection']}|{rec}".encode()).hexdigest()
                for r, rec in zip(rows, records, strict=True)
            ],
            "collection": [r["collection"] for r in rows],
            "reason": [r["reason"] for r in rows],
            "record": records,
        }
    )


def _rows(pages: Pages, collection: str, subject_id: str | None, stats: FetchStats):
    seen: set[str] = set()
    fields = FIELDS[collection]
    for page in _timed(pages(collection), stats):
        batch: Batch = to_batch(page, collection, fields, subject_id, collection in DOCUMENTS)
        keys = batch.table.column("record_key").to_pylist()
        subjects = batch.table.column("subject_id").to_pylist()
        fresh = {f"{s}|{k}" for s, k in zip(subjects, keys, strict=True)}
        duplicates = len(keys) - len(fresh) + len(fresh & seen)
        seen |= fresh
        stats.duplicates[collection] = stats.duplicates.get(collection, 0) + duplicates
        stats.add(collection, len(page), batch.issues, len(batch.quarantined))
        if batch.table.num_rows:
            yield batch.table
        if batch.quarantined:
            yield dlt.mark.with_table_name(
                _quarantine_table(batch.quarantined, subject_id), "quarantine"
            )


def _timed(pages: Iterator[list[dict]], stats: FetchStats) -> Iterator[list[dict]]:
    """Add the time spent waiting for each page to `stats.seconds`."""
    while True:
        started = time.perf_counter()
        page = next(pages, None)
        stats.seconds += time.perf_counter() - started
        if page is None:
            return
        yield page


def build_resources(
    pages: Pages,
    stats: FetchStats,
    subject_id: str | None,
    collections: tuple[str, ...] = COLLECTIONS,
) -> list[DltResource]:
    """One merge resource per collection, fed by `pages`."""
    return [
        dlt.resource(
            _rows(pages, collection, subject_id, stats),
            name=collection,
            write_disposition={"disposition": "merge", "strategy": "upsert"},
            primary_key=list(PRIMARY_KEY),
        )
        for collection in collections
    ]


@dlt.source(name="nightscout", max_table_nesting=0)
def nightscout(
    client: NightscoutClient,
    window: Window,
    subject_id: str,
    stats: FetchStats,
    page_size: int = 10_000,
    collections: tuple[str, ...] = COLLECTIONS,
) -> list[DltResource]:
    """Records of a Nightscout site in `window`, paged by the date bound."""

    def pages(collection: str) -> Iterator[list[dict]]:
        if collection == "profile":
            yield client.get_json("profile.json", {"count": str(page_size)})
        else:
            yield from client.pages(collection, window, page_size)

    return build_resources(pages, stats, subject_id, collections)


@dlt.source(name="nightscout", max_table_nesting=0)
def nightscout_file(
    records: dict[str, list[dict]],
    stats: FetchStats,
    window: Window | None = None,
    page_size: int = 10_000,
    collections: tuple[str, ...] = COLLECTIONS,
) -> list[DltResource]:
    """Records of a Nightscout export or iglu CSV (see `cascade.sources.files`), per subject."""

    def pages(collection: str) -> Iterator[list[dict]]:
        rows = records.get(collection, [])
        if window is not None and collection != "profile":
            rows = [r for r in rows if _in_window(r, collection, window)]
        for start in range(0, len(rows), page_size):
            yield rows[start : start + page_size]

    return build_resources(pages, stats, None, collections)


def _in_window(record: dict, collection: str, window: Window) -> bool:
    value = record.get(DATE_FIELD[collection])
    stamp = value if isinstance(value, (int, float)) else iso_to_ms(value)
    if stamp is not None and collection == "entries" and stamp < 100_000_000_000:
        stamp *= 1000
    # records without a usable date are kept so that ingestion can report them
    return stamp is None or window.start_ms <= stamp < window.end_ms
