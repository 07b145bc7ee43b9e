"""Nightscout (demo server over HTTP) → dlt → <lake>.raw, on the local lake and PostgreSQL + S3."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cascade.demo.generator import entries_for_day, treatments_for_day
from cascade.demo.server import DemoServer
from cascade.ingest import ingest_file, ingest_site
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sources.nightscout.helpers import Window
from tests.support import PG_PASSWORD, S3_SECRET, s3_client

DAY = date(2024, 3, 1)


def utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def window(first: date, days: int) -> Window:
    return Window(utc(first), utc(first + timedelta(days=days)))


def expected_entries(first: date, days: int) -> set[str]:
    return {e["_id"] for d in range(days) for e in entries_for_day(first + timedelta(days=d))}


def raw_counts(settings: Settings, table: str) -> tuple[int, int, int]:
    """(rows, distinct keys, distinct _id) of a raw table."""
    with connect(settings, read_only=True) as con:
        return con.execute(
            f"select count(*), count(distinct (subject_id, record_key)), count(distinct _id) "
            f"from ducklake.raw.{table}"
        ).fetchone()


def data_files(settings: Settings, moto_endpoint: str | None) -> list[str]:
    if settings.profile == "local":
        return [str(p) for p in (settings.home / "lake").rglob("*.parquet")]
    bucket = settings.data_path.removeprefix("s3://").split("/")[0]
    s3 = s3_client(moto_endpoint)
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="lake/")
    return [o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".parquet")]


def test_two_windows_and_a_rerun_give_exact_counts(lake_settings: Settings, request):
    moto = request.getfixturevalue("moto_endpoint") if lake_settings.profile == "scale" else None
    with DemoServer(now=utc(DAY + timedelta(days=30))) as server:
        first = ingest_site(lake_settings, window(DAY, 2), server.url, "demo")
        second = ingest_site(lake_settings, window(DAY + timedelta(days=2), 2), server.url, "demo")
        rerun = ingest_site(lake_settings, window(DAY, 2), server.url, "demo")

    expected = expected_entries(DAY, 4)
    assert raw_counts(lake_settings, "entries") == (len(expected), len(expected), len(expected))
    assert first.tables["entries"].inserted == len(expected_entries(DAY, 2))
    assert second.tables["entries"].updated == 0
    assert rerun.tables["entries"].inserted == 0
    assert rerun.tables["entries"].updated == len(expected_entries(DAY, 2))
    treatments = {t["_id"] for d in range(4) for t in treatments_for_day(DAY + timedelta(days=d))}
    assert raw_counts(lake_settings, "treatments")[:2] == (len(treatments), len(treatments))
    assert raw_counts(lake_settings, "profile")[0] == 1
    assert first.bad_records == 0 and first.fetch_seconds > 0

    assert data_files(lake_settings, moto), "no parquet data files under the data path"
    with connect(lake_settings, read_only=True) as con:
        databases = con.execute("pragma database_list").fetchall()
        assert [row[1] for row in databases if row[1] != "memory"] == ["ducklake"]
        assert all(PG_PASSWORD not in str(row) for row in databases)
        in_memory = con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'memory'"
        ).fetchone()[0]
        assert in_memory == 0
        # re-running a window replaced rows in place, it did not append
        ids = con.execute(
            "select count(*) from (select _id from ducklake.raw.entries group by _id having count(*) > 1)"
        ).fetchone()[0]
        assert ids == 0


def test_bad_records_are_kept_or_quarantined_and_counted(local_settings: Settings, tmp_path: Path):
    base = int(utc(DAY).timestamp() * 1000)
    export = {
        "entries": [
            {"_id": "good", "type": "sgv", "date": base, "sgv": 120},
            {"_id": "low", "type": "sgv", "date": base + 300_000, "sgv": "LOW"},
            {"_id": "nosgv", "type": "sgv", "date": base + 600_000},
            {"_id": "seconds", "type": "sgv", "date": base // 1000 + 900, "sgv": 99},
            {"_id": "good", "type": "sgv", "date": base, "sgv": 120},
            {"type": "sgv", "date": base + 1_200_000, "sgv": 130},
            {"sgv": 140},
        ],
        "treatments": [
            {"eventType": "Meal Bolus", "carbs": "lots", "created_at": "2024-03-01T08:00:00Z"}
        ],
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    result = ingest_file(local_settings, path)

    assert result.fetched == 8
    assert result.duplicates == 1
    # LOW, missing sgv, seconds, the un-keyable record, carbs as text
    assert result.bad_records == 5
    with connect(local_settings, read_only=True) as con:
        rows = dict(
            con.execute(
                "select record_key, coalesce(issue, 'ok') from ducklake.raw.entries"
            ).fetchall()
        )
        low = con.execute(
            "select sgv, raw_values from ducklake.raw.entries where record_key = 'low'"
        ).fetchone()
        seconds = con.execute(
            "select date_ms from ducklake.raw.entries where record_key = 'seconds'"
        ).fetchone()[0]
        quarantined = con.execute(
            "select collection, reason from ducklake.raw.quarantine"
        ).fetchall()
        carbs = con.execute("select carbs, raw_values from ducklake.raw.treatments").fetchone()
    assert rows["good"] == "ok"
    assert "sgv" in rows["low"] and "missing sgv" in rows["nosgv"]
    assert rows[f"sgv|{base + 1_200_000}"] == "ok"  # no _id: the natural key stands in
    assert low == (None, '{"sgv":"LOW"}')
    assert seconds == (base // 1000 + 900) * 1000
    assert quarantined == [("entries", "no _id and no natural key")]
    assert carbs == (None, '{"carbs":"lots"}')


def test_iglu_csv_with_several_subjects(local_settings: Settings, tmp_path: Path):
    path = tmp_path / "cgm.csv"
    path.write_text(
        '"","id","time","gl"\n'
        '"1","Subject 1","2015-06-06 16:50:27",153\n'
        '"2","Subject 1","2015-06-06 16:55:27",137\n'
        '"3","Subject 2","2015-06-06 16:50:27",NA\n'
        '"4","Subject 2","2015-06-06 16:55:27",101\n'
    )
    result = ingest_file(local_settings, path, utc_offset_minutes=-300)
    assert result.tables["entries"].inserted == 4
    with connect(local_settings, read_only=True) as con:
        rows = con.execute(
            "select subject_id, count(*), count(sgv), min(date_ms) from ducklake.raw.entries group by 1 order by 1"
        ).fetchall()
    first_ms = int(datetime(2015, 6, 6, 21, 50, 27, tzinfo=UTC).timestamp() * 1000)
    assert rows == [("Subject 1", 2, 2, first_ms), ("Subject 2", 2, 1, first_ms)]


@pytest.mark.pg
def test_password_and_keys_never_reach_the_lake_metadata(scale_settings: Settings):
    with DemoServer(now=utc(DAY + timedelta(days=3))) as server:
        ingest_site(scale_settings, window(DAY, 1), server.url, "demo")
    with connect(scale_settings, read_only=True) as con:
        dumped = str(con.execute("pragma database_list").fetchall())
        dumped += str(con.execute("select * from duckdb_settings()").fetchall())
    for secret in (PG_PASSWORD, S3_SECRET):
        assert secret not in dumped


pytestmark = pytest.mark.timeout(300)
