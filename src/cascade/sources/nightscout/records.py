"""Turn pages of Nightscout JSON into typed Arrow tables, keeping every bad record visible.

A value that does not fit its column (an `sgv` of "LOW", a date in seconds) is never dropped:
the row is kept with the column null (or repaired) and the original value in `raw_values`, and
the row's `issue` says what was wrong. A record that has neither `_id` nor its fallback key
cannot be merged idempotently and goes to quarantine instead, counted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from cascade.sources.nightscout.settings import (
    CASCADE_FIELDS,
    DATE_FIELD,
    EPOCH_MS_THRESHOLD,
    FALLBACK_KEY,
)


@dataclass
class Batch:
    """A page turned into rows: the typed table, plus what was quarantined or repaired."""

    table: pa.Table
    quarantined: list[dict] = field(default_factory=list)
    issues: int = 0


def iso_to_ms(value: object) -> int | None:
    """Epoch milliseconds of an ISO 8601 timestamp (naive means UTC), or None if unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def coerce(value: object, kind: pa.DataType) -> tuple[object, bool]:
    """Return (value as `kind`, ok). A value that cannot be represented gives (None, False)."""
    if value is None:
        return None, True
    try:
        if pa.types.is_integer(kind):
            if isinstance(value, bool):
                return None, False
            number = float(value)
            if math.isfinite(number) and number == int(number):
                return int(number), True
            return (round(number), True) if math.isfinite(number) else (None, False)
        if pa.types.is_floating(kind):
            if isinstance(value, bool):
                return None, False
            number = float(value)
            return (number, True) if math.isfinite(number) else (None, False)
    except (TypeError, ValueError, OverflowError):
        return None, False
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":")), True
    return str(value), True


def _column(records: list[dict], name: str, kind: pa.DataType) -> tuple[pa.Array, list]:
    """One typed column; the slow per-value path runs only when the fast conversion fails."""
    values = [r.get(name) for r in records]
    try:
        return pa.array(values, type=kind), []
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    coerced, bad = [], []
    for index, value in enumerate(values):
        converted, ok = coerce(value, kind)
        coerced.append(converted)
        if not ok:
            bad.append((index, value))
    return pa.array(coerced, type=kind), bad


def _fallback_key(record: dict, collection: str) -> str | None:
    parts = [record.get(name) for name in FALLBACK_KEY[collection]]
    if any(part is None or part == "" for part in parts):
        return None
    return "|".join(str(part) for part in parts)


def _date_ms(record: dict, collection: str) -> tuple[int | None, str | None]:
    """The record's time in epoch ms, and an issue when it had to be repaired or is missing."""
    if collection == "entries":
        value, ok = coerce(record.get("date"), pa.int64())
        if not ok or value is None:
            return iso_to_ms(record.get("dateString")), "missing or invalid date"
        if value < EPOCH_MS_THRESHOLD:
            return value * 1000, "date in seconds, converted to ms"
        return value, None
    field = DATE_FIELD.get(collection, "created_at")
    value = iso_to_ms(record.get(field) or record.get("created_at"))
    return value, (None if value is not None else f"missing or invalid {field}")


def _entry_dates(records: list[dict], dates: pa.Array, issues: dict[int, list[str]]) -> pa.Array:
    """Entry times in ms: vectorised for the usual case, per record only where repaired."""
    valid = pc.fill_null(pc.greater_equal(dates, EPOCH_MS_THRESHOLD), False)
    if pc.all(valid).as_py():
        return dates
    values = dates.to_pylist()
    for index in pc.indices_nonzero(pc.invert(valid)).to_pylist():
        values[index], issue = _date_ms(records[index], "entries")
        issues.setdefault(index, []).append(issue)
    return pa.array(values, type=pa.int64())


def _keyed(records: list[dict], collection: str) -> tuple[list[dict], list[str], list[dict]]:
    """(records that have a key, their keys, quarantine rows for those that have none)."""
    keep, keys, quarantined = [], [], []
    for record in records:
        record_id = record.get("_id")
        key = str(record_id) if record_id not in (None, "") else _fallback_key(record, collection)
        if key is None:
            quarantined.append(
                {"collection": collection, "reason": "no _id and no natural key", "record": record}
            )
            continue
        keep.append(record)
        keys.append(key)
    return keep, keys, quarantined


def _as_json(value: object) -> str | None:
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), default=str)


def to_batch(
    records: list[dict],
    collection: str,
    fields: dict[str, pa.DataType],
    subject_id: str | None,
    spread_unknown: bool = False,
) -> Batch:
    """Type a page of `collection` records into an Arrow table with cascade's columns.

    Fields not in `fields` go, as JSON text, into one `extra` column, or with `spread_unknown`
    (nested documents: devicestatus, profile) into a JSON text column each. `subject_id` None
    takes each record's own `subject_id` (a multi-subject file import).
    """
    keep, keys, quarantined = _keyed(records, collection)
    issues: dict[int, list[str]] = {}
    raw_values: dict[int, dict] = {}
    columns: dict[str, pa.Array] = {}
    for name, kind in fields.items():
        columns[name], bad = _column(keep, name, kind)
        for index, value in bad:
            issues.setdefault(index, []).append(f"{name} not a {kind}")
            raw_values.setdefault(index, {})[name] = value

    if collection == "entries":
        for index, record in enumerate(keep):
            if record.get("sgv") is None and record.get("type", "sgv") == "sgv":
                issues.setdefault(index, []).append("missing sgv")
        dates = _entry_dates(keep, columns["date"], issues)
    else:
        stamps = []
        for index, record in enumerate(keep):
            stamp, issue = _date_ms(record, collection)
            stamps.append(stamp)
            if issue:
                issues.setdefault(index, []).append(issue)
        dates = pa.array(stamps, type=pa.int64())

    known = {*fields, "subject_id"}
    unknown = [r for r in keep if not r.keys() <= known]
    if spread_unknown:
        for name in sorted({k for r in unknown for k in r} - known):
            columns[name] = pa.array([_as_json(r.get(name)) for r in keep], type=pa.string())
        extras = [None] * len(keep)
    else:
        extras = [
            None if r.keys() <= known else _as_json({k: v for k, v in r.items() if k not in known})
            for r in keep
        ]
    count = len(keep)
    cascade_columns = {
        "subject_id": [subject_id or str(r.get("subject_id") or "unknown") for r in keep],
        "record_key": keys,
        "date_ms": dates,
        "raw_values": [_as_json(raw_values.get(i)) for i in range(count)]
        if raw_values
        else [None] * count,
        "extra": extras,
        "issue": ["; ".join(issues[i]) if i in issues else None for i in range(count)],
    }
    for name, values in cascade_columns.items():
        columns[name] = pa.array(values, type=CASCADE_FIELDS[name])
    schema = pa.schema(
        [
            pa.field(name, col.type, nullable=name not in ("subject_id", "record_key"))
            for name, col in columns.items()
        ]
    )
    return Batch(pa.table(columns, schema=schema), quarantined, len(issues))
