"""Dagster: the asset graph, materialisation on both profiles, concurrency, faults."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

# no public Dagster API lists the steps a job's run will execute
from dagster._core.execution.api import create_execution_plan

from cascade.definitions import build_definitions
from cascade.defs.jobs import HOURLY_JOB, PIPELINE_JOB
from cascade.defs.partitions import partition_range_tags
from cascade.defs.runners import (
    nightscout_pipeline_job,
    persistent_instance,
    run_backfill,
    run_in_child,
    run_pipeline,
)
from cascade.demo.generator import entries_for_day
from cascade.demo.server import DemoServer
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.transform import prepare_dbt_project
from tests.conftest import pg_execute
from tests.support import PG_PASSWORD

SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "asset_graph.json"
DAY = date(2025, 3, 10)
NOW = datetime(2025, 4, 1, tzinfo=UTC)
LAYER_TABLES = {
    "raw": ["entries"],
    "bronze": ["stg_entries"],
    "silver": ["fct_glucose_readings"],
    "gold": ["mrt_daily_glycaemia", "mrt_period_summary", "mrt_agp"],
}

pytestmark = pytest.mark.timeout(900)


def asset_graph(settings: Settings) -> dict:
    graph = build_definitions(settings).resolve_asset_graph()
    snapshot = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        snapshot[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "checks": sorted(c.name for c in node.check_keys),
        }
    return snapshot


def test_asset_graph_matches_the_snapshot(local_settings: Settings):
    graph = asset_graph(local_settings)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(graph, indent=2, sort_keys=True) + "\n")
    assert graph == json.loads(SNAPSHOT.read_text())
    # one graph: dbt sources are the ingestion assets (and the site registry), a group a layer
    assert "raw/entries" in graph["bronze/stg_entries"]["deps"]
    assert "ops/sites" in graph["bronze/stg_profile_periods"]["deps"]
    assert {v["group"] for v in graph.values()} == {"ops", "raw", "bronze", "silver", "gold"}


def test_hourly_run_makes_one_dbt_step(local_settings: Settings):
    """The daily (partitioned) models and the other tables in one step: each step is one dbt
    process, seconds of start-up a run (the snapshot holds which assets are partitioned)."""
    job = build_definitions(local_settings).resolve_job_def(HOURLY_JOB)
    steps = [s.key for s in create_execution_plan(job).get_steps_to_execute_in_topo_order()]
    assert [s for s in steps if s.startswith("dbt_")] == ["dbt_models"]


def day_count(day: date) -> int:
    return len(entries_for_day(day))


def layer_counts(settings: Settings) -> dict[str, int]:
    counts = {}
    with connect(settings, read_only=True) as con:
        for layer, tables in LAYER_TABLES.items():
            for table in tables:
                counts[f"{layer}.{table}"] = con.execute(
                    f"select count(*) from ducklake.{layer}.{table}"
                ).fetchone()[0]
        in_memory = con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'memory'"
        ).fetchone()[0]
    assert in_memory == 0
    return counts


def test_multiprocess_executor_run(local_settings: Settings, monkeypatch, tmp_path: Path):
    with DemoServer(now=NOW) as server:
        for name, value in {
            "CASCADE_HOME": str(local_settings.home),
            "CASCADE_NIGHTSCOUT_URL": server.url,
            "CASCADE_SUBJECT_ID": "demo",
            "CASCADE_START_DATE": "2025-01-01",
        }.items():
            monkeypatch.setenv(name, value)
        (tmp_path / "dagster").mkdir()
        with dg.DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
            result = dg.execute_job(
                dg.reconstructable(nightscout_pipeline_job),
                instance=instance,
                tags=partition_range_tags(DAY, DAY),
            )
            assert result.success
            events = [e.dagster_event for e in instance.all_logs(result.run_id) if e.dagster_event]
    # the default (multiprocess) executor ran each step in a process of its own
    step_pids = {e.pid for e in events if e.is_step_start}
    assert len(step_pids) == sum(e.is_step_start for e in events) > 1
    assert os.getpid() not in step_pids
    assert layer_counts(local_settings)["raw.entries"] == day_count(DAY)
    # a table model materialised alone (the UI's Materialize on it): no partition, rebuilt
    # whole by the same dbt multi-asset
    agp = dg.AssetKey(["gold", "mrt_agp"])
    job = build_definitions(local_settings).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        alone = job.execute_in_process(instance=instance, asset_selection=[agp])
    assert alone.success
    assert [m.asset_key for m in alone.get_asset_materialization_events()] == [agp]
    assert alone.get_asset_materialization_events()[0].partition is None


def test_concurrent_partitions_reach_gold_and_a_rerun_changes_nothing(lake_settings: Settings):
    """One pipeline run per partition, two at once (local: serialised on the writer lock;
    PostgreSQL: ingestion in parallel, dbt taking turns; never a hang: the test times out),
    then both days again in one run: the same rows in every layer, each raw row updated."""
    settings = lake_settings.model_copy(update={"start_date": "2025-01-01"})
    last = DAY + timedelta(days=1)
    with DemoServer(now=NOW) as server:
        report = run_backfill(
            settings, DAY, last, 2, server.url, "demo", one_run_per_partition=True
        )
        assert len(report.runs) == 2 and not report.failures, report.failures
        counts = layer_counts(settings)
        again = run_pipeline(settings, DAY, last, nightscout_url=server.url, subject_id="demo")
        assert again.success, again.failures
    assert counts == layer_counts(settings)
    assert counts["raw.entries"] == day_count(DAY) + day_count(last)
    assert all(n > 0 for n in counts.values()), counts
    entries = again.materialized["raw/entries"]
    assert entries["rows_inserted"] == 0 and entries["rows_updated"] == counts["raw.entries"]
    assert {"ducklake_snapshot_id", "data_files_written", "bad_records", "seconds"} <= set(entries)
    # dbt's tests are the checks: unique readings, plausible values
    readings = [name for name in again.checks if name.startswith("silver/fct_glucose_readings:")]
    assert any("unique" in name for name in readings) and any("range" in name for name in readings)
    assert all(again.checks.values())
    # one persistent instance: `cascade dev` shows the runs of `cascade run` and the backfill
    with dg.DagsterInstance.local_temp(str(settings.home.absolute() / "dagster")) as instance:
        runs = instance.get_runs()
    assert again.run_id in {r.run_id for r in runs} and len(runs) == 3
    if settings.profile == "scale":
        database = settings.catalog.database
        admin = os.environ.get(
            "CASCADE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
        idle = pg_execute(
            admin,
            f"select count(*) from pg_stat_activity where datname = '{database}' "
            "and state like 'idle in transaction%'",
        )[0][0]
        locks = pg_execute(
            admin,
            "select count(*) from pg_locks l join pg_stat_activity a using (pid) "
            f"where a.datname = '{database}' and l.granted and a.pid <> pg_backend_pid()",
        )[0][0]
        assert idle == 0 and locks == 0


def test_backfill_is_ranged_ingestion_then_one_dbt_run(local_settings: Settings):
    settings = local_settings.model_copy(update={"start_date": "2025-01-01"})
    with DemoServer(now=NOW) as server:
        report = run_backfill(settings, DAY, DAY + timedelta(days=3), 2, server.url, "demo")
    assert not report.failures, report.failures
    assert [(r.job, r.first, r.last) for r in report.runs] == [
        ("nightscout_ingest", DAY, DAY + timedelta(days=1)),
        ("nightscout_ingest", DAY + timedelta(days=2), DAY + timedelta(days=3)),
        ("nightscout_refine", DAY, DAY + timedelta(days=3)),
    ]
    counts = layer_counts(settings)
    assert counts["raw.entries"] == sum(day_count(DAY + timedelta(days=d)) for d in range(4))
    with connect(settings, read_only=True) as con:
        days = con.execute("select count(*) from ducklake.gold.mrt_daily_glycaemia").fetchone()[0]
    assert days == 4
    # Dagster knows each day materialised; the refine run planned each asset once, not daily
    daily = dg.AssetKey(["gold", "mrt_daily_glycaemia"])
    instance = persistent_instance(settings)
    try:
        assert instance.get_materialized_partitions(daily) == {
            (DAY + timedelta(days=d)).isoformat() for d in range(4)
        }
        (refine,) = instance.get_runs(dg.RunsFilter(job_name="nightscout_refine"))
        planned = instance.get_records_for_run(
            refine.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
    finally:
        instance.dispose()
    keys = [r.event_log_entry.dagster_event.asset_key for r in planned]
    assert daily in keys and len(keys) == len(set(keys))


def test_a_failing_partition_fails_alone(local_settings: Settings):
    # two partitions at once, each run in its own process as Dagster's run launcher and
    # `cascade backfill` run them (`run_in_child` is the backfill's own worker)
    settings = local_settings.model_copy(update={"start_date": "2025-01-01", "http_retries": 2})
    later = DAY + timedelta(days=1)
    prepare_dbt_project()
    spawn = multiprocessing.get_context("spawn")
    with (
        DemoServer(now=NOW) as good,
        DemoServer(now=NOW) as bad,
        ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool,
    ):
        bad.inject_faults("entries", 500, times=1000)
        payload = settings.to_child_json()
        runs = [
            pool.submit(run_in_child, payload, PIPELINE_JOB, day, day, server.url, "demo")
            for day, server in ((DAY, bad), (later, good))
        ]
        failed, passed = (run.result(timeout=600) for run in runs)
    assert not failed.success and passed.success
    assert any("failed after 3 attempts: HTTP 500" in f for f in failed.failures), failed.failures
    assert layer_counts(settings)["raw.entries"] == day_count(later)


@pytest.mark.pg
def test_refused_catalog_fails_the_run_clearly(scale_settings: Settings):
    url = scale_settings.catalog_url.get_secret_value().replace(":5432/", ":1/")
    settings = Settings(
        **{**scale_settings.model_dump(), "catalog_url": url, "start_date": "2025-01-01"}
    )
    with DemoServer(now=NOW) as server:
        result = run_pipeline(settings, DAY, DAY, nightscout_url=server.url, log_level="ERROR")
    assert not result.success
    message = " ".join(result.failures)
    assert "could not open the lake" in message and "refused" in message.lower()
    assert PG_PASSWORD not in message
