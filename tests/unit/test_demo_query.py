"""Nightscout v1 query semantics of the demo server, on small in-memory sites."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from cascade.demo.query import (
    DEFAULT_WINDOW_MS,
    ENTRIES,
    TREATMENTS,
    Condition,
    QueryError,
    parse_int,
    parse_query,
    with_default_window,
)
from cascade.demo.stamps import iso_ms
from cascade.demo.store import FileStore, GeneratedStore, select

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000


def _entries(hours: int) -> list[dict]:
    return [
        {
            "_id": f"{i:024x}",
            "type": "mbg" if i % 10 == 9 else "sgv",
            "sgv": 100 + i,
            "date": T0 + i * HOUR,
            "dateString": iso_ms(T0 + i * HOUR),
        }
        for i in range(hours)
    ]


@pytest.fixture
def site() -> FileStore:
    """Ten days of hourly entries, and a treatment every 6 hours."""
    treatments = [
        {
            "_id": str(i),
            "eventType": "Meal Bolus" if i % 2 else "Temp Basal",
            "created_at": iso_ms(T0 + i * 6 * HOUR),
            "carbs": 10 * i,
        }
        for i in range(40)
    ]
    return FileStore({"entries": _entries(240), "treatments": treatments})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1704067200000", 1_704_067_200_000),
        ("2024-01-05T00:00:00Z", 2024),
        ("  -12abc", -12),
        ("0x1A", 26),
        ("12.9", 12),
    ],
)
def test_parse_int_is_javascript_parseint(text: str, expected: int) -> None:
    assert parse_int(text) == expected


def test_parse_int_without_digits_is_nan() -> None:
    assert math.isnan(parse_int("abc"))


def test_operators_and_plain_values() -> None:
    params = {f"find[date][{op}]": "1000" for op in ("$gte", "$gt", "$lte", "$lt", "$eq", "$ne")}
    query = parse_query({**params, "find[type]": "sgv", "find[sgv][$gte]": "70"}, ENTRIES)
    assert {(c.op, c.value) for c in query.conditions if c.field == "date"} == {
        ("$gte", 1000),
        ("$gt", 1000),
        ("$lte", 1000),
        ("$lt", 1000),
        ("$eq", 1000),
        ("$ne", 1000),
    }
    assert Condition("type", "$eq", "sgv") in query.conditions
    assert Condition("sgv", "$gte", 70) in query.conditions


def test_unsupported_operator_and_unparseable_dates_are_refused() -> None:
    with pytest.raises(QueryError, match=r"\$where"):
        parse_query({"find[date][$where]": "1"}, ENTRIES)
    with pytest.raises(QueryError, match="ISO-8601"):
        parse_query({"find[date][$gte]": "yesterday"}, ENTRIES)
    with pytest.raises(QueryError, match="ISO-8601"):
        parse_query({"find[created_at][$gte]": "not a date"}, TREATMENTS)


@pytest.mark.parametrize(("raw", "count"), [(None, 10), ("50", 50), ("0", 10), ("x", 10)])
def test_count_defaults_to_ten(raw: str | None, count: int) -> None:
    params = {} if raw is None else {"count": raw}
    assert parse_query(params, ENTRIES).count == count


def test_created_at_values_are_normalised_to_utc_iso() -> None:
    for raw in ("2024-01-05T08:00:00+01:00", "2024-01-05T08:00:00 01:00", "2024-01-05T07:00Z"):
        [condition] = parse_query({"find[created_at][$gte]": raw}, TREATMENTS).conditions
        assert condition.value == "2024-01-05T07:00:00.000Z"
    [numeric] = parse_query({"find[created_at][$gte]": "1704412800000"}, TREATMENTS).conditions
    assert numeric.value == "1704412800000"


def test_default_window_only_without_a_date_condition() -> None:
    bare = parse_query({"find[type]": "sgv"}, ENTRIES)
    windowed = with_default_window(bare, ENTRIES, T0)
    assert Condition("date", "$gte", T0 - DEFAULT_WINDOW_MS) in windowed.conditions
    for params in ({"find[date][$lt]": "5"}, {"find[dateString][$gte]": "2024"}):
        query = parse_query(params, ENTRIES)
        assert with_default_window(query, ENTRIES, T0) == query
    treatments = with_default_window(parse_query({}, TREATMENTS), TREATMENTS, T0)
    assert treatments.conditions == (Condition("created_at", "$gte", "2023-12-28T00:00:00.000Z"),)


def test_newest_first_with_default_count(site: FileStore) -> None:
    result = select(site, "entries", {})
    assert [e["date"] for e in result] == [T0 + i * HOUR for i in range(239, 229, -1)]


def test_no_date_filter_means_the_last_four_days_of_the_file(site: FileStore) -> None:
    result = select(site, "entries", {"count": "100000"})
    newest = T0 + 239 * HOUR
    assert len(result) == 97  # 4 days of hourly entries, both ends included
    assert min(e["date"] for e in result) == newest - DEFAULT_WINDOW_MS
    treatments = select(site, "treatments", {"count": "1000"})
    assert len(treatments) == 17


def test_iso_string_in_find_date_is_the_parseint_trap(site: FileStore) -> None:
    # "2024-01-09..." becomes 2024 (ms after 1970): everything matches, not the last day only.
    result = select(site, "entries", {"find[date][$gte]": "2024-01-09T00:00:00Z", "count": "500"})
    assert len(result) == 240


def test_range_paging_and_type_filter(site: FileStore) -> None:
    params = {
        "find[date][$gte]": str(T0 + 24 * HOUR),
        "find[date][$lt]": str(T0 + 48 * HOUR),
        "find[type]": "sgv",
        "count": "1000",
    }
    result = select(site, "entries", params)
    assert [e["date"] for e in result] == [T0 + i * HOUR for i in range(47, 23, -1) if i % 10 != 9]
    assert select(site, "entries", params, entry_type="mbg") == []


def test_typed_comparisons_like_mongodb() -> None:
    records = _entries(3) + [{"_id": "x", "type": "sgv", "sgv": "HIGH", "date": T0 + 5}]
    site = FileStore({"entries": records})
    numeric = select(site, "entries", {"find[sgv][$gte]": "0", "find[date][$gte]": "0"})
    assert all(isinstance(e["sgv"], int) for e in numeric) and len(numeric) == 3
    not_equal = select(site, "entries", {"find[sgv][$ne]": "101", "find[date][$gte]": "0"})
    assert {e["_id"] for e in not_equal} == {"x", f"{0:024x}", f"{2:024x}"}


def test_created_at_range_and_regex(site: FileStore) -> None:
    params = {
        "find[created_at][$gte]": "2024-01-02",
        "find[created_at][$lt]": "2024-01-03",
        "find[eventType]": "/meal/i",
        "count": "100",
    }
    result = select(site, "treatments", params)
    assert [t["created_at"] for t in result] == [
        "2024-01-02T18:00:00.000Z",
        "2024-01-02T06:00:00.000Z",
    ]


def test_generated_site_stops_at_now_and_defaults_to_its_last_four_days() -> None:
    now = datetime(2024, 3, 1, 12, tzinfo=UTC)
    generated = GeneratedStore(now=now)
    now_ms = round(now.timestamp() * 1000)
    result = select(generated, "entries", {"count": "5000"})
    assert max(e["date"] for e in result) <= now_ms
    assert min(e["date"] for e in result) >= now_ms - DEFAULT_WINDOW_MS
    assert len(result) > 4 * 250
    later = select(generated, "entries", {"find[date][$gte]": str(now_ms + 1)})
    assert later == []


def test_a_generated_site_keeps_its_recent_days_whatever_the_shared_cache_dropped() -> None:
    from cascade.demo.store import RECENT_DAYS, _generated_day

    now = datetime(2024, 3, 1, 12, tzinfo=UTC)
    site = GeneratedStore(now=now, seed="recent")
    now_ms = round(now.timestamp() * 1000)
    week = {"find[date][$gte]": str(now_ms - 7 * 86_400_000), "count": "5000"}  # 8 UTC days
    hours = {"find[date][$gte]": str(now_ms - 3 * 3_600_000), "count": "5000"}
    first = select(site, "entries", week)
    _generated_day.cache_clear()  # as hundreds of other sites' days would push them out
    refresh = select(site, "entries", hours)
    assert 0 < len(refresh) < len(first) and refresh == first[: len(refresh)]
    assert _generated_day.cache_info().misses == 0  # today: from the site's own days
    assert select(site, "entries", week) == first
    assert _generated_day.cache_info().misses == 8 - RECENT_DAYS  # the older days again
