"""The Nightscout dlt source: entries, treatments, devicestatus and profile into `raw`.

Every resource merges on (subject_id, record_key), where record_key is Nightscout's `_id` or,
when that is missing, the natural key (date + type): re-running any window never duplicates.
Every page is yielded as a typed Arrow table (fast, stable types); devicestatus and profile
keep each nested document as a JSON text column. Records that cannot be keyed or typed at all,
and file records that belong to no collection, go to `raw.quarantine`, counted. One load never
writes two rows under one key: a key seen twice keeps its newest version, the rest are counted
as duplicates.
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

from cascade.lake.layout import RAW_SORTED_BY
from cascade.sources.files import UNROUTABLE
from cascade.sources.nightscout.helpers import NightscoutClient, Window
from cascade.sources.nightscout.records import Batch, iso_to_ms, to_batch
from cascade.sources.nightscout.settings import (
    DATE_FIELD,
    DEVICESTATUS_FIELDS,
    ENTRY_FIELDS,
    EPOCH_MS_THRESHOLD,
    MAX_RECORD_CHARS,
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


def _record_text(record: object) -> str:
    try:
        text = json.dumps(record, default=str, sort_keys=True)
    except (ValueError, RecursionError):
        text = repr(record)
    return text[:MAX_RECORD_CHARS]


def _quarantine_table(rows: list[dict], subject_id: str | None) -> pa.Table:
    """One row per distinct quarantined record (the same poison twice is one row)."""
    by_key: dict[str, dict] = {}
    for row in rows:
        text = _record_text(row["record"])
        key = hashlib.sha1(f"{row['collection']}|{text}".encode()).hexdigest()
        record = row["record"] if isinstance(row["record"], dict) else {}
        subject = subject_id or row.get("subject_id") or record.get("subject_id") or "unknown"
        by_key[key] = {
            "subject_id": str(subject),
            "record_key": key,
            "collection": row["collection"],
            "reason": row["reason"],
            "record": text,
        }
    kept = list(by_key.values())
    return pa.table({name: [r[name] for r in kept] for name in QUARANTINE_COLUMNS})


QUARANTINE_COLUMNS = ("subject_id", "record_key", "collection", "reason", "record")


def _rows(pages: Pages, collection: str, subject_id: str | None, stats: FetchStats):
    seen: set[tuple[str, str]] = set()
    fields = FIELDS[collection]
    for page in _timed(pages(collection), stats):
        batch: Batch = to_batch(page, collection, fields, subject_id, collection in DOCUMENTS)
        table = _unseen(batch.table, seen)
        duplicates = batch.duplicates + batch.table.num_rows - table.num_rows
        stats.duplicates[collection] = stats.duplicates.get(collection, 0) + duplicates
        stats.add(collection, len(page), batch.issues, len(batch.quarantined))
        if table.num_rows:
            yield table
        if batch.quarantined:
            yield dlt.mark.with_table_name(
                _quarantine_table(batch.quarantined, subject_id), "quarantine"
            )


def _unseen(table: pa.Table, seen: set[tuple[str, str]]) -> pa.Table:
    """The rows of `table` whose (subject, key) no earlier page of this load held; adds them.

    Pages are disjoint on a well-behaved server; a misbehaving one must still not put a key
    into raw twice from one load (the first page's version is already on its way).
    """
    identities = list(
        zip(
            table.column("subject_id").to_pylist(),
            table.column("record_key").to_pylist(),
            strict=True,
        )
    )
    fresh = [identity not in seen for identity in identities]
    seen.update(identities)
    return table if all(fresh) else table.filter(pa.array(fresh))


def _unroutable(rows: list[dict], stats: FetchStats):
    """File records that belong to no collection, as quarantine rows, counted."""
    stats.add(UNROUTABLE, len(rows), 0, len(rows))
    yield dlt.mark.with_table_name(_quarantine_table(rows, None), "quarantine")


def _timed(pages: Iterator[list[dict]], stats: FetchStats) -> Iterator[list[dict]]:
    """Add the time spent waiting for each page to `stats.seconds`."""
    while True:
        started = time.perf_counter()
        page = next(pages, None)
        stats.seconds += time.perf_counter() - started
        if page is None:
            return
        yield page


# the lake sorts raw by time (cascade.lake.layout)
SORT_HINTS = {column: {"sort": True} for column in RAW_SORTED_BY}


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
            columns=SORT_HINTS,
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
    """Records of a Nightscout export or iglu CSV (see `cascade.sources.files`), per subject.

    `records[UNROUTABLE]` (quarantine rows made by the file reader) is written to
    `raw.quarantine` whatever `collections` says.
    """

    def pages(collection: str) -> Iterator[list[dict]]:
        rows = records.get(collection, [])
        if window is not None and collection != "profile":
            rows = [r for r in rows if _in_window(r, collection, window)]
        for start in range(0, len(rows), page_size):
            yield rows[start : start + page_size]

    resources = build_resources(pages, stats, None, collections)
    if records.get(UNROUTABLE):
        resources.append(
            dlt.resource(
                _unroutable(records[UNROUTABLE], stats),
                name=UNROUTABLE,
                write_disposition={"disposition": "merge", "strategy": "upsert"},
                primary_key=list(PRIMARY_KEY),
            )
        )
    return resources


def _in_window(record: object, collection: str, window: Window) -> bool:
    if not isinstance(record, dict):
        return True  # kept so that the record parser can quarantine and count it
    value = record.get(DATE_FIELD[collection])
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    stamp = value if number else iso_to_ms(value)
    if stamp is not None and collection == "entries" and 0 <= stamp < EPOCH_MS_THRESHOLD:
        stamp *= 1000
    # records without a usable date are kept so that ingestion can report them
    return stamp is None or window.start_ms <= stamp < window.end_ms
