"""`ingest_file` on single-collection and mixed exports: each record lands in its raw table."""

from __future__ import annotations

import json
from pathlib import Path

from cascade.ingest import ingest_file
from cascade.lake.connection import connect
from cascade.settings import Settings


def test_a_bare_treatments_list_lands_in_raw_treatments(local_settings: Settings, tmp_path: Path):
    # exactly what /api/v1/treatments.json returns, plus two records nothing can route
    treatments = [
        {
            "_id": f"t{i}",
            "eventType": "Correction Bolus",
            "insulin": 1.5,
            "created_at": f"2024-05-10T0{i}:00:00.000Z",
        }
        for i in range(5)
    ]
    path = tmp_path / "treatments.json"
    path.write_text(json.dumps([*treatments, 42, {"hello": "world"}]))
    result = ingest_file(local_settings, path)

    assert result.fetched_by_collection == {"treatments": 5, "unroutable": 2}
    assert result.bad_by_collection == {"treatments": 0, "unroutable": 2}
    with connect(local_settings, read_only=True) as con:
        tables = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = 'ducklake' and table_schema = 'raw'"
            ).fetchall()
        }
        keys = con.execute("select record_key from ducklake.raw.treatments").fetchall()
        quarantined = con.execute(
            "select subject_id, collection, reason, record from ducklake.raw.quarantine "
            "order by record"
        ).fetchall()
    assert "entries" not in tables
    assert sorted(k for (k,) in keys) == [f"t{i}" for i in range(5)]
    assert quarantined == [
        ("treatments", "unknown", "unroutable record", "42"),
        ("treatments", "unknown", "unroutable record", '{"hello": "world"}'),
    ]
