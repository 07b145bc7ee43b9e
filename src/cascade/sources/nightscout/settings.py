"""Constants of the Nightscout v1 API and of cascade's raw tables."""

from __future__ import annotations

import pyarrow as pa

API_PREFIX = "/api/v1"
# The date field each collection is windowed on, and how it is compared.
DATE_FIELD = {
    "entries": "date",
    "treatments": "created_at",
    "devicestatus": "created_at",
    "profile": "startDate",
}
# Fallback natural key where `_id` is missing: date plus type.
FALLBACK_KEY = {
    "entries": ("type", "date"),
    "treatments": ("eventType", "created_at"),
    "devicestatus": ("device", "created_at"),
    "profile": ("defaultProfile", "startDate"),
}
PRIMARY_KEY = ("subject_id", "record_key")
# A date below this is in epoch seconds, not milliseconds (1e11 ms is March 1973).
EPOCH_MS_THRESHOLD = 100_000_000_000
RETRY_STATUSES = (429, 500, 502, 503, 504)
# Statuses whose `Retry-After` is honoured, and the longest wait it may ask for by default.
RETRY_AFTER_STATUSES = (429, 503)
RETRY_AFTER_CAP_S = 60.0
# What a record may be before it is quarantined instead of typed: no uploader nests deeper
# than a few levels or writes a megabyte into one document, but a broken one might.
MAX_DEPTH = 64
MAX_RECORD_CHARS = 1_000_000
# Nested documents spread at most this many top-level fields into columns; the rest go to
# `extra`, so a hostile page cannot widen a raw table without bound.
MAX_SPREAD_COLUMNS = 64
# An sgv outside this range (mg/dL) is kept but flagged: no CGM reports such a value.
SGV_RANGE = (0, 1000)

ENTRY_FIELDS = {
    "_id": pa.string(),
    "type": pa.string(),
    "date": pa.int64(),
    "dateString": pa.string(),
    "sysTime": pa.string(),
    "sgv": pa.int64(),
    "mbg": pa.float64(),
    "direction": pa.string(),
    "noise": pa.int64(),
    "filtered": pa.float64(),
    "unfiltered": pa.float64(),
    "rssi": pa.int64(),
    "slope": pa.float64(),
    "intercept": pa.float64(),
    "scale": pa.float64(),
    "device": pa.string(),
    "utcOffset": pa.int64(),
}
TREATMENT_FIELDS = {
    "_id": pa.string(),
    "eventType": pa.string(),
    "created_at": pa.string(),
    "insulin": pa.float64(),
    "carbs": pa.float64(),
    "glucose": pa.float64(),
    "glucoseType": pa.string(),
    "units": pa.string(),
    "duration": pa.float64(),
    "absolute": pa.float64(),
    "rate": pa.float64(),
    "percent": pa.float64(),
    "notes": pa.string(),
    "enteredBy": pa.string(),
    "utcOffset": pa.int64(),
}
# Nested documents: these top-level fields are typed, every other one is a JSON text column.
DEVICESTATUS_FIELDS = {"_id": pa.string(), "created_at": pa.string(), "device": pa.string()}
PROFILE_FIELDS = {
    "_id": pa.string(),
    "defaultProfile": pa.string(),
    "startDate": pa.string(),
    "created_at": pa.string(),
    "units": pa.string(),
}
# Columns cascade adds to every flat raw table.
CASCADE_FIELDS = {
    "subject_id": pa.string(),
    "record_key": pa.string(),
    "date_ms": pa.int64(),
    "raw_values": pa.string(),
    "extra": pa.string(),
    "issue": pa.string(),
}
