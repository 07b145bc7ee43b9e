"""Nightscout's v1 read-API query semantics, as pure functions.

Follows cgm-remote-monitor's `lib/server/query.js`: `find[field]` and `find[field][$op]`
parameters become conditions; some fields are run through JavaScript's `parseInt` first (so an
ISO string given for `find[date]` becomes its year); a query that says nothing about the
collection's date field (nor `dateString`, nor `_id`) is silently limited to the last four days.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

from cascade.demo.stamps import iso_ms, parse_iso_ms

DEFAULT_COUNT = 10
DEFAULT_WINDOW_MS = 4 * 86_400_000
COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
_FIND_KEY = re.compile(r"^find\[([^\[\]]+)\](?:\[(\$[a-z]+)\])?$")
_PARSE_INT = re.compile(r"^\s*([+-]?)(?:0[xX]([0-9a-fA-F]+)|(\d+))")
_JS_NUMBER = re.compile(
    r"^\s*(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Infinity)"
    r"|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+)?\s*$"
)
_REGEX = re.compile(r"^/(.*)/([a-z]*)$", re.DOTALL)


class QueryError(ValueError):
    """A query the real server refuses (answered with HTTP 400)."""


@dataclass(frozen=True)
class Collection:
    """How one collection is queried: its date field and the fields typed by `parseInt`."""

    name: str
    date_field: str
    use_epoch: bool
    int_fields: frozenset[str]
    regex_fields: frozenset[str] = frozenset()


ENTRIES = Collection(
    "entries",
    "date",
    True,
    frozenset({"date", "sgv", "filtered", "unfiltered", "rssi", "noise", "mbg"}),
)
TREATMENTS = Collection(
    "treatments",
    "created_at",
    False,
    frozenset({"insulin", "carbs", "glucose"}),
    frozenset({"notes", "eventType", "enteredBy"}),
)
DEVICESTATUS = Collection("devicestatus", "created_at", False, frozenset())
COLLECTIONS = {c.name: c for c in (ENTRIES, TREATMENTS, DEVICESTATUS)}


@dataclass(frozen=True)
class Condition:
    """One `find` term: `field op value` (op is a Mongo comparison or `$regex`)."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Query:
    """A parsed request: its conditions and how many records to return (newest first)."""

    conditions: tuple[Condition, ...]
    count: int


@dataclass(frozen=True)
class KeyRange:
    """Bounds on a collection's date field; None means unbounded."""

    low: Any = None
    low_inclusive: bool = True
    high: Any = None
    high_inclusive: bool = True


def parse_int(text: str) -> int | float:
    """JavaScript's `parseInt(text)`: the leading integer, or NaN if there is none."""
    match = _PARSE_INT.match(text)
    if match is None:
        return float("nan")
    sign, hexa, digits = match.groups()
    value = int(hexa, 16) if hexa else int(digits)
    return -value if sign == "-" else value


def parse_query(params: Mapping[str, str], collection: Collection) -> Query:
    """Conditions and count from query parameters (already URL-decoded, one value each)."""
    conditions = []
    for key, raw in params.items():
        match = _FIND_KEY.match(key)
        if match is None:
            continue
        field, op = match.group(1), match.group(2) or "$eq"
        if op not in COMPARISONS:
            raise QueryError(f"unsupported operator {op} in {key}")
        if field == collection.date_field and raw == "":
            continue  # an empty value is falsy in JavaScript and ignored
        conditions.append(_condition(field, op, raw, collection))
    return Query(tuple(conditions), _count(params.get("count")))


def _condition(field: str, op: str, raw: str, collection: Collection) -> Condition:
    value: Any = raw
    if field in collection.int_fields:
        value = parse_int(raw)
    elif op == "$eq" and field in collection.regex_fields and (match := _REGEX.match(raw)):
        flags = re.IGNORECASE if "i" in match.group(2) else 0
        return Condition(field, "$regex", re.compile(match.group(1), flags))
    if field == collection.date_field:
        value = _date_value(value)
        if value is None:
            hint = " (epoch milliseconds: it is read with parseInt)" if collection.use_epoch else ""
            raise QueryError(
                f"find[{field}][{op}]={raw}: cannot parse {raw!r} as a valid ISO-8601 date{hint}"
            )
    return Condition(field, op, value)


def _date_value(value: Any) -> Any:
    """The server rewrites non-numeric date values to UTC ISO strings (numeric ones stay);
    None when it cannot."""
    if isinstance(value, float) and value != value:
        return None
    if not isinstance(value, str) or _JS_NUMBER.match(value):
        return value
    ms = parse_iso_ms(value.replace(" ", "+"))  # clients often leave the + of an offset unescaped
    return None if ms is None else iso_ms(ms)


def _count(raw: str | None) -> int:
    if raw is None or not raw.strip().isdigit() or int(raw) <= 0:
        return DEFAULT_COUNT
    return int(raw)


def with_default_window(query: Query, collection: Collection, reference_ms: int) -> Query:
    """Add Nightscout's hidden `date >= reference - 4 days` when the query names no date."""
    fields = {c.field for c in query.conditions}
    if fields & {collection.date_field, "dateString", "_id"}:
        return query
    low_ms = reference_ms - DEFAULT_WINDOW_MS
    value = low_ms if collection.use_epoch else iso_ms(low_ms)
    window = Condition(collection.date_field, "$gte", value)
    return Query((*query.conditions, window), query.count)


def split_key_range(query: Query, key: str) -> tuple[KeyRange, tuple[Condition, ...]]:
    """The range that the conditions on `key` bound, and the conditions left to test per record."""
    key_range = KeyRange()
    rest = []
    for condition in query.conditions:
        if condition.field == key and condition.op in ("$eq", "$gt", "$gte", "$lt", "$lte"):
            key_range = _narrow(key_range, condition.op, condition.value)
        else:
            rest.append(condition)
    return key_range, tuple(rest)


def _narrow(key_range: KeyRange, op: str, value: Any) -> KeyRange:
    low, low_inc, high, high_inc = (
        key_range.low,
        key_range.low_inclusive,
        key_range.high,
        key_range.high_inclusive,
    )
    if op in ("$gt", "$gte", "$eq") and (
        low is None or value > low or (value == low and op == "$gt")
    ):
        low, low_inc = value, op != "$gt"
    if op in ("$lt", "$lte", "$eq") and (
        high is None or value < high or (value == high and op == "$lt")
    ):
        high, high_inc = value, op != "$lt"
    return KeyRange(low, low_inc, high, high_inc)


def in_range(value: Any, key_range: KeyRange) -> bool:
    """Whether a record's key lies in the range (keys of another type never do)."""
    low, high = key_range.low, key_range.high
    if low is not None and (
        not _same_kind(value, low) or value < low or (value == low and not key_range.low_inclusive)
    ):
        return False
    return high is None or (
        _same_kind(value, high) and (value < high or (value == high and key_range.high_inclusive))
    )


def matches(record: Mapping[str, Any], conditions: Iterable[Condition]) -> bool:
    """Whether a record satisfies every condition, with MongoDB's typed comparisons."""
    return all(_test(record.get(c.field), c.op, c.value) for c in conditions)


def _test(value: Any, op: str, target: Any) -> bool:
    if op == "$regex":
        return isinstance(value, str) and target.search(value) is not None
    if op in ("$eq", "$ne"):
        equal = _same_kind(value, target) and value == target
        return equal if op == "$eq" else not equal
    if not _same_kind(value, target):
        return False
    if op == "$gt":
        return value > target
    if op == "$gte":
        return value >= target
    if op == "$lt":
        return value < target
    return value <= target


def _same_kind(a: Any, b: Any) -> bool:
    """MongoDB compares numbers with numbers and strings with strings, never across."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return not isinstance(a, bool) and not isinstance(b, bool)
    return type(a) is type(b)


def take(records: Iterable[dict], conditions: tuple[Condition, ...], count: int) -> list[dict]:
    """The first `count` records (already newest first) that satisfy the conditions."""
    if not conditions:
        return list(islice(records, count))
    result = []
    for record in records:
        if matches(record, conditions):
            result.append(record)
            if len(result) >= count:
                break
    return result
