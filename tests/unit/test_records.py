"""The record parser: exact typing, visible repairs, and no input that can abort a load."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascade.sources.nightscout import DOCUMENTS, FIELDS
from cascade.sources.nightscout.records import to_batch
from cascade.sources.nightscout.settings import MAX_DEPTH, MAX_RECORD_CHARS

MS = 1_778_284_500_105


def entries(*records: object):
    return to_batch(list(records), "entries", FIELDS["entries"], "s")


def rows(batch) -> dict[str, dict]:
    return {r["record_key"]: r for r in batch.table.to_pylist()}


def test_fractional_epoch_ms_are_rounded_silently():
    got = rows(entries({"_id": "a", "date": MS + 0.5488, "sgv": 100}))["a"]
    assert got["date"] == got["date_ms"] == MS + 1 and got["issue"] is None
    got = rows(entries({"_id": "b", "date": MS + 0.4, "sgv": 100}, {"_id": "c", "date": MS}))
    assert got["b"]["date_ms"] == MS  # the slow path too (a mixed page) rounds, never truncates


def test_a_non_integral_sgv_is_kept_with_its_original_and_an_issue():
    got = rows(entries({"_id": "a", "date": MS, "sgv": 123.6}))["a"]
    assert got["sgv"] == 124
    assert got["issue"] == "sgv not an integer, rounded"
    assert json.loads(got["raw_values"]) == {"sgv": 123.6}


def test_out_of_range_values_are_kept_visible():
    got = rows(entries({"_id": "a", "date": MS, "sgv": 2**63}, {"_id": "b", "date": MS, "sgv": -5}))
    assert got["a"]["sgv"] is None and "sgv out of int64 range" in got["a"]["issue"]
    assert json.loads(got["a"]["raw_values"]) == {"sgv": 2**63}
    assert got["b"]["sgv"] == -5 and "outside" in got["b"]["issue"]


def test_poison_records_are_quarantined_or_repaired_never_raised():
    deep: object = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    batch = to_batch(
        [
            5,
            "x",
            None,
            [1],
            {"_id": "deep", "loop": deep},
            {"_id": "big", "notes": "x" * (MAX_RECORD_CHARS + 1)},
            {"_id": "bad-unicode", "device": "pump \ud800", "created_at": "2024-01-01T00:00:00Z"},
        ],
        "devicestatus",
        FIELDS["devicestatus"],
        "s",
        spread_unknown=True,
    )
    reasons = [q["reason"] for q in batch.quarantined]
    assert reasons[:4] == [f"not a JSON object ({t})" for t in ("int", "str", "NoneType", "list")]
    assert reasons[4].startswith("nested deeper") and reasons[5].startswith("larger than")
    [row] = batch.table.to_pylist()
    assert row["device"] == "pump \ufffd" and "lone surrogate" in row["issue"]


def test_one_key_twice_keeps_the_newest():
    batch = entries(
        {"_id": "a", "date": MS, "sgv": 1, "srvModified": 5},
        {"_id": "a", "date": MS, "sgv": 2, "srvModified": 3},
        {"_id": "b", "date": MS, "sgv": 3},
        {"_id": "b", "date": MS, "sgv": 4},
    )
    got = rows(batch)
    assert (got["a"]["sgv"], got["b"]["sgv"], batch.duplicates) == (1, 4, 1 + 1)


# Arbitrary JSON, with what real pages hold in odd places: huge integers, huge floats, lone
# surrogates, nesting. (JSON cannot hold inf or nan.)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**80)
    | st.integers(min_value=-(2**80), max_value=-(2**62))
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 1778284500105.5488, 123.6, 2.0**64])
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "a\udfffb", "LOW", "2024-05-10T08:00:00Z", ""])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_names = st.sampled_from(
    [
        "_id",
        "type",
        "date",
        "sgv",
        "created_at",
        "eventType",
        "insulin",
        "device",
        "store",
        "startDate",
        "srvModified",
        "subject_id",
        "issue",
        "aB",
        "a_b",
        "",
    ]
) | st.text(max_size=6)
_records = st.dictionaries(_names, _json, max_size=8) | _json
_pages = st.lists(_records, max_size=8)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page=_pages, collection=st.sampled_from(sorted(FIELDS)))
def test_any_json_page_is_typed_counted_and_loadable(page, collection):
    batch = to_batch(page, collection, FIELDS[collection], "s", collection in DOCUMENTS)
    kept = batch.table.num_rows
    assert kept + batch.duplicates + len(batch.quarantined) == len(page)
    assert batch.issues <= kept
    batch.table.to_pylist()
    sink = pa.BufferOutputStream()
    pq.write_table(batch.table, sink)
    assert pq.read_table(pa.BufferReader(sink.getvalue())).num_rows == kept
