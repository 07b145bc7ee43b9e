"""Turn pages of Nightscout JSON into typed Arrow tables, keeping every bad record visible.

A value that does not fit its column (an `sgv` of "LOW" or 123.6, a date in seconds) is never
dropped or silently changed: the row is kept with the column null (or repaired) and the
original value in `raw_values`, and the row's `issue` says what was wrong. A record that cannot
be merged idempotently or typed at all (no `_id` and no fallback key, not a JSON object, nested
absurdly deep, larger than `MAX_RECORD_BYTES`) goes to quarantine instead, counted: one poison
record never aborts a load.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention

from cascade.sources.nightscout.settings import (
    CASCADE_FIELDS,
    DATE_FIELD,
    EPOCH_MS_THRESHOLD,
    FALLBACK_KEY,
    MAX_DEPTH,
    MAX_RECORD_CHARS,
    MAX_SPREAD_COLUMNS,
    SGV_RANGE,
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ROUNDED = "not an integer, rounded"
# Columns where rounding is the documented repair, not an issue: a fraction of a millisecond
# (`1778284500105.5488`, as Loop writes) carries no information.
ROUNDED_SILENTLY = frozenset({"date"})
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMING = NamingConvention()


@dataclass
class Batch:
    """A page turned into rows: the typed table, plus what was quarantined, repaired, merged."""

    table: pa.Table
    quarantined: list[dict] = field(default_factory=list)
    issues: int = 0
    duplicates: int = 0


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def iso_ms(epoch_ms: int) -> str:
    """`2024-01-05T07:31:12.000Z` for an epoch-ms instant: JavaScript's toISOString, the format
    Nightscout stores in `created_at` (arithmetic only: the demo generator calls it per record)."""
    days, rest = divmod(epoch_ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    day = date.fromordinal(_EPOCH_ORDINAL + days).isoformat()
    return f"{day}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


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
    return round(parsed.timestamp() * 1000)


def _number(value: object) -> int | float | None:
    """`value` as an int or a finite float, or None when it is no number at all."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def coerce(value: object, kind: pa.DataType) -> tuple[object, str | None]:
    """(value as `kind`, problem). The problem is None when the value is represented as it was.

    A non-integral number for an integer column is rounded and says so; a number outside int64
    or float64 becomes None and says so. Objects and lists become JSON text for string columns.
    """
    if value is None:
        return None, None
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        number = _number(value)
        if number is None:
            return None, f"not a {kind}"
        if pa.types.is_floating(kind):
            try:
                return float(number), None
            except OverflowError:
                return None, "out of float64 range"
        rounded = round(number)
        if not INT64_MIN <= rounded <= INT64_MAX:
            return None, "out of int64 range"
        return rounded, (None if rounded == number else ROUNDED)
    if isinstance(value, (dict, list)):
        return _as_json(value), None
    return str(value), None


def _column(records: list[dict], name: str, kind: pa.DataType) -> tuple[pa.Array, list]:
    """One typed column and its (index, value, problem) repairs.

    Arrow's own conversion is fast but truncates floats into integer columns silently, so it
    runs only where it cannot change a value; every other column goes value by value.
    """
    values = [r.get(name) for r in records]
    exact = not pa.types.is_integer(kind) or all(type(v) is int or v is None for v in values)
    if exact:
        try:
            return pa.array(values, type=kind), []
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    coerced, bad = [], []
    for index, value in enumerate(values):
        converted, problem = coerce(value, kind)
        coerced.append(converted)
        if problem and not (problem == ROUNDED and name in ROUNDED_SILENTLY):
            bad.append((index, value, problem))
    return pa.array(coerced, type=kind), bad


class _TooDeep(Exception):
    pass


def _clean(value: object, depth: int, fixes: set[str]) -> tuple[object, int]:
    """(`value` with lone surrogates and non-finite numbers repaired, its size in characters).

    Raises _TooDeep beyond MAX_DEPTH. Repairs are named in `fixes`.
    """
    kind = type(value)
    if kind is str:
        if not value.isascii() and _SURROGATE.search(value):
            fixes.add("invalid Unicode (lone surrogate) replaced by U+FFFD")
            value = _SURROGATE.sub("\ufffd", value)
        return value, len(value) + 2
    if kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise _TooDeep
        size = 2
        if kind is list:
            items = []
            for item in value:
                item, item_size = _clean(item, depth + 1, fixes)
                items.append(item)
                size += item_size + 1
            return items, size
        cleaned = {}
        for key, item in value.items():
            key, key_size = _clean(key, depth + 1, fixes)
            cleaned[key], item_size = _clean(item, depth + 1, fixes)
            size += key_size + item_size + 2
        return cleaned, size
    if kind is float and not math.isfinite(value):
        fixes.add("non-finite number replaced by null")
        return None, 4
    return value, 8


_PLAIN = (int, bool, type(None))


def _clean_flat(record: dict) -> tuple[dict, int] | None:
    """(record, size) for the usual flat record of ASCII text and plain numbers, else None.

    Entries and treatments are almost always such records: this skips `_clean`'s recursion.
    """
    size = 2
    for key, value in record.items():
        kind = type(value)
        if kind is str:
            if not value.isascii():
                return None
            size += len(value) + 2
        elif kind is float:
            if not math.isfinite(value):
                return None
            size += 8
        elif kind in _PLAIN:
            size += 8
        else:
            return None
        if not key.isascii():
            return None
        size += len(key) + 4
    return record, size


def _screen(
    records: list[object], collection: str
) -> tuple[list[dict], list[list[str]], list[dict]]:
    """(records that can be typed, the repairs made to each, quarantine rows for the rest)."""
    keep: list[dict] = []
    repairs: list[list[str]] = []
    quarantined: list[dict] = []
    for record in records:
        reason = None
        if not isinstance(record, dict):
            reason = f"not a JSON object ({type(record).__name__})"
        else:
            fixes: set[str] = set()
            try:
                cleaned, size = _clean_flat(record) or _clean(record, 0, fixes)
            except _TooDeep:
                reason = f"nested deeper than {MAX_DEPTH} levels"
            else:
                if size > MAX_RECORD_CHARS:
                    reason = f"larger than {MAX_RECORD_CHARS:,} characters"
        if reason:
            quarantined.append({"collection": collection, "reason": reason, "record": record})
            continue
        keep.append(cleaned)
        repairs.append(sorted(fixes))
    return keep, repairs, quarantined


def _fallback_key(record: dict, collection: str) -> str | None:
    parts = [record.get(name) for name in FALLBACK_KEY[collection]]
    if any(part is None or part == "" for part in parts):
        return None
    return "|".join(str(part) for part in parts)


def _date_ms(record: dict, collection: str) -> tuple[int | None, str | None]:
    """The record's time in epoch ms, and an issue when it had to be repaired or is missing."""
    if collection == "entries":
        value, problem = coerce(record.get("date"), pa.int64())
        if value is None or value < 0 or (problem and problem != ROUNDED):
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


def _keyed(
    records: list[dict], repairs: list[list[str]], collection: str
) -> tuple[list[dict], list[str], list[list[str]], list[dict]]:
    """(records that have a key, their keys, their repairs, quarantine rows for the rest)."""
    keep, keys, kept_repairs, quarantined = [], [], [], []
    for record, fixes in zip(records, repairs, strict=True):
        record_id = record.get("_id")
        key = str(record_id) if record_id not in (None, "") else _fallback_key(record, collection)
        if key is None:
            quarantined.append(
                {"collection": collection, "reason": "no _id and no natural key", "record": record}
            )
            continue
        keep.append(record)
        keys.append(key)
        kept_repairs.append(fixes)
    return keep, keys, kept_repairs, quarantined


def _modified(record: dict) -> float:
    value = record.get("srvModified")
    number = _number(value) if not isinstance(value, str) else iso_to_ms(value)
    return -math.inf if number is None else float(number)


def newest_by_key(records: list[dict], keys: list[str], subjects: list[str]) -> list[int]:
    """Indices of one record per (subject, key): the highest `srvModified`, else the last seen.

    A page that holds one `_id` twice (an edited record served twice) must not put two rows
    under one key into raw; Nightscout's own `srvModified` says which version is newer.
    """
    identities = list(zip(subjects, keys, strict=True))
    if len(set(identities)) == len(identities):
        return list(range(len(identities)))
    best: dict[tuple[str, str], int] = {}
    for index, identity in enumerate(identities):
        held = best.get(identity)
        if held is None or _modified(records[index]) >= _modified(records[held]):
            best[identity] = index
    return sorted(best.values())


def _as_json(value: object) -> str | None:
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), default=str)


def _spread_names(records: list[dict], known: set[str]) -> list[str]:
    """Unknown fields that get a JSON column of their own: at most MAX_SPREAD_COLUMNS, and only
    names dlt normalises to a column no other field (or cascade column) maps to: two keys that
    dlt would fold into one column (`aB`, `a_b`) must not collide in the load."""
    taken = {_NAMING.normalize_identifier(name) for name in (*known, *CASCADE_FIELDS)}
    names = []
    for name in sorted({k for r in records for k in r} - known):
        try:
            normal = _NAMING.normalize_identifier(name)
        except ValueError:
            continue
        if normal in taken or len(names) >= MAX_SPREAD_COLUMNS:
            continue
        taken.add(normal)
        names.append(name)
    return names


def to_batch(
    records: list[object],
    collection: str,
    fields: dict[str, pa.DataType],
    subject_id: str | None,
    spread_unknown: bool = False,
) -> Batch:
    """Type a page of `collection` records into an Arrow table with cascade's columns.

    Never raises on content: anything in the page is a typed row (with its issues), a merged
    duplicate, or a quarantine row. Fields not in `fields` go, as JSON text, into one `extra`
    column, or with `spread_unknown` (nested documents: devicestatus, profile) into a JSON text
    column each where the name is a plain column name. `subject_id` None takes each record's own
    `subject_id` (a multi-subject file import).
    """
    screened, repairs, quarantined = _screen(records, collection)
    keyed, keys, repairs, unkeyed = _keyed(screened, repairs, collection)
    quarantined += unkeyed
    subjects = [subject_id or str(r.get("subject_id") or "unknown") for r in keyed]
    chosen = newest_by_key(keyed, keys, subjects)
    duplicates = len(keyed) - len(chosen)
    keep = [keyed[i] for i in chosen]
    keys, subjects = [keys[i] for i in chosen], [subjects[i] for i in chosen]
    issues: dict[int, list[str]] = {i: list(repairs[c]) for i, c in enumerate(chosen) if repairs[c]}
    raw_values: dict[int, dict] = {}
    columns: dict[str, pa.Array] = {}
    for name, kind in fields.items():
        columns[name], bad = _column(keep, name, kind)
        for index, value, problem in bad:
            issues.setdefault(index, []).append(f"{name} {problem}")
            raw_values.setdefault(index, {})[name] = value

    if collection == "entries":
        _flag_sgv(keep, columns["sgv"], issues, raw_values)
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
    spread = _spread_names(keep, known) if spread_unknown else []
    for name in spread:
        columns[name] = pa.array([_as_json(r.get(name)) for r in keep], type=pa.string())
    in_columns = known | set(spread)
    extras = [
        None
        if r.keys() <= in_columns
        else _as_json({k: v for k, v in r.items() if k not in in_columns})
        for r in keep
    ]
    count = len(keep)
    cascade_columns = {
        "subject_id": subjects,
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
    return Batch(pa.table(columns, schema=schema), quarantined, len(issues), duplicates)


def _flag_sgv(
    records: list[dict], sgv: pa.Array, issues: dict[int, list[str]], raw_values: dict[int, dict]
) -> None:
    """Name a missing sgv, and one outside SGV_RANGE (kept as it is, its original recorded)."""
    low, high = SGV_RANGE
    outside = pc.fill_null(pc.or_(pc.less(sgv, low), pc.greater(sgv, high)), False)
    for index in pc.indices_nonzero(outside).to_pylist():
        issues.setdefault(index, []).append(f"sgv outside {low}-{high} mg/dL")
        raw_values.setdefault(index, {}).setdefault("sgv", records[index].get("sgv"))
    for index, record in enumerate(records):
        if record.get("sgv") is None and record.get("type", "sgv") == "sgv":
            issues.setdefault(index, []).append("missing sgv")
