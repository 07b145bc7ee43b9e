"""The lake's layout: bronze and silver partitioned (per-subject and per-month reads prune files),
small writes inlined in the catalog until `cascade maintain` flushes them, and raw merges that
stay exact re-run after re-run (a partitioned raw table once doubled under dlt's merge)."""

from __future__ import annotations

from datetime import date

from cascade.ingest import run_load
from cascade.lake.connection import connect, metadata_prefix
from cascade.lake.layout import INLINE_ROWS, PARTITION_KEYS, inlining_options, unpartitioned
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
