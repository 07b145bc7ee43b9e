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
SORT_FIELD_IS_EPOCH_MS = {"entries": True, "treatments": False, "devicestatus": False}
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
