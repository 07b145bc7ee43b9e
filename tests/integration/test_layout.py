"""The lake's layout: bronze and silver partitioned (per-subject and per-month reads prune files),
small writes inlined in the catalog until `cascade maintain` flushes them, raw merges that
stay exact re-run after re-run (a partitioned raw table once doubled under dlt's merge), and raw
written in time order (window reads skip the row groups of other days)."""

from __future__ import annotations

import random
from datetime import date

from cascade.ingest import run_load
from cascade.lake.connection import connect, metadata_prefix
from cascade.lake.layout import (
    INLINE_ROWS,
    PARTITION_KEYS,
    inlining_options,
    unpartitioned,
    unsorted_raw_tables,
)
from cascade.lake.maintenance import run_maintenance
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import run_transform
from tests.integration.test_transform import demo_records


def _load(settings, first: date, days: int, subject: str) -> None:
    stats = FetchStats()
    run_load(settings, nightscout_file(demo_records(first, days, subject), stats), stats)


def inlined_tables(settings) -> int:
    """How many inlined-data tables the catalog holds (each is a table of the catalog database)."""
    sql = f"select count(*) from {metadata_prefix(settings)}.ducklake_inlined_data_tables"
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchone()[0]


def test_tables_get_their_keys_and_new_files_follow_them(local_settings):
    _load(local_settings, date(2024, 3, 1), 2, "alice")
    run_transform(local_settings)
    _load(local_settings, date(2024, 3, 3), 1, "bob")
    _load(local_settings, date(2024, 3, 3), 1, "bob")  # a re-run changes nothing
    run_transform(local_settings, date(2024, 3, 3), date(2024, 3, 4), subjects=["bob"])
    # DuckLake keeps a catalog table per inlined table until its snapshots expire: when every
    # run's table models and dlt staging tables were inlined, each hourly refresh left ~30
    # behind and every statement of the next runs slowed (34 s -> 56 s a refresh in ten runs)
    settled = inlined_tables(local_settings)
    _load(local_settings, date(2024, 3, 3), 1, "bob")
    run_transform(local_settings, date(2024, 3, 3), date(2024, 3, 4), subjects=["bob"])
    assert inlined_tables(local_settings) == settled
    with connect(local_settings, read_only=True) as con:
        before_flush = con.execute(
            "select count(*) from ducklake_list_files('ducklake', 'fct_glucose_readings', "
            "schema => 'silver')"
        ).fetchone()[0]
    run_maintenance(local_settings)  # flushes inlined rows into (partitioned) files

    with connect(local_settings, read_only=True) as con:
        assert unpartitioned(con, local_settings, ("bronze", "silver")) == []
        limits = inlining_options(con, local_settings)
        raw = con.execute(
            "select count(*), count(distinct (subject_id, record_key)) from ducklake.raw.entries"
        ).fetchone()
        fact_files = [
            row[0]
            for row in con.execute(
                "select data_file from ducklake_list_files('ducklake', 'fct_glucose_readings', "
                "schema => 'silver')"
            ).fetchall()
        ]
        readings = con.execute(
            "select subject_id, count(*) from ducklake.silver.fct_glucose_readings group by all"
        ).fetchall()
    assert raw[0] == raw[1] > 600  # every key once, after a re-run too
    assert len(fact_files) >= before_flush >= 1  # maintenance flushed what was inlined
    assert dict(readings).keys() == {"alice", "bob"}
    # a filter on the subject finds its rows (partition pruning once lost them all)
    with connect(local_settings, read_only=True) as con:
        bob = con.execute(
            "select count(*) from ducklake.silver.fct_glucose_readings where subject_id = 'bob'"
        ).fetchone()[0]
    assert bob == dict(readings)["bob"] > 0
    assert ("raw", "entries") not in PARTITION_KEYS and INLINE_ROWS >= 288  # a subject's day
    # small writes inline into tables that live on; table models (rebuilt anew) never do
    assert limits[("GLOBAL", None)] == "0" and limits[("SCHEMA", "raw")] == str(INLINE_ROWS)
    assert limits[("TABLE", "silver.fct_glucose_readings")] == str(INLINE_ROWS)
    assert ("TABLE", "gold.mrt_agp") not in limits


def out_of_order(con, table: str) -> list[tuple[int, int]]:
    """(rows, rows whose date_ms is below the previous row's) of each data file of raw `table`,
    in the files' physical row order."""
    files = con.execute(
        f"select data_file from ducklake_list_files('ducklake', '{table}', schema => 'raw')"
    ).fetchall()
    return [
        con.execute(
            "select count(*), count(*) filter (where date_ms < previous) from ("
            "select date_ms, lag(date_ms) over (order by file_row_number) as previous "
            f"from read_parquet('{path}', file_row_number = true))"
        ).fetchone()
        for (path,) in files
    ]


def test_raw_is_written_in_time_order_and_maintain_sorts_older_tables(local_settings):
    records = demo_records(date(2024, 3, 1), 3, "alice")
    for rows in records.values():
        random.Random(7).shuffle(rows)  # uploads arrive in any order (Nightscout: newest first)
    stats = FetchStats()
    run_load(local_settings, nightscout_file(records, stats), stats)
    with connect(local_settings) as con:
        assert unsorted_raw_tables(con, local_settings) == []
        for table in ("entries", "treatments", "devicestatus"):
            (rows, disordered), *_ = out_of_order(con, table)
            assert rows > 30 and disordered == 0, table
        # a table made before raw was sorted (or by hand) gets the order from maintenance
        con.execute("create table ducklake.raw.legacy (subject_id varchar, date_ms bigint)")
        con.execute("insert into ducklake.raw.legacy values ('alice', 3), ('alice', 1)")
        assert unsorted_raw_tables(con, local_settings) == ["legacy"]
    report = run_maintenance(local_settings)
    assert report.sorted_tables == ["raw.legacy"]
    assert "sorted by time from now on" in report.describe()
    with connect(local_settings, read_only=True) as con:
        assert unsorted_raw_tables(con, local_settings) == []
        # maintenance flushed the inlined rows of the table into a file, sorted
        assert out_of_order(con, "legacy") == [(2, 0)]
