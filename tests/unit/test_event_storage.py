"""The instance's event log (defs/storage.py): a ranged run's events are stored as Dagster's
own SQLite event log stores them, batches in one transaction, and every event through one
engine per database instead of a new engine (and connection) for each."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
from dagster._core.storage.event_log.sqlite import sqlite_event_log

from cascade.defs import storage
from cascade.defs.partitions import partition_range_tags
from cascade.defs.runners import persistent_instance
from cascade.defs.storage import EVENT_BATCH_ENV, BatchedSqliteEventLogStorage
from cascade.settings import Settings

DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-03-01")
FIRST, LAST = date(2025, 1, 1), date(2025, 2, 28)  # 59 days
CHECK = dg.AssetCheckKey(dg.AssetKey("daily"), "sane")


@dg.asset(
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("sane", asset="daily")],
)
def daily(context):
    yield dg.MaterializeResult(metadata={"days": len(context.partition_keys)})
    yield dg.AssetCheckResult(check_name="sane", passed=True)


@dg.asset(deps=[daily])
def summary():
    return dg.MaterializeResult(metadata={"rows": 1})


JOB = dg.define_asset_job("ranged", selection=[daily, summary])
DEFS = dg.Definitions(assets=[daily, summary], jobs=[JOB])


def stored(instance: dg.DagsterInstance) -> dict:
    """What the instance tells about the ranged run, with its own ids left out."""
    result = DEFS.resolve_job_def("ranged").execute_in_process(
        instance=instance, tags=partition_range_tags(FIRST, LAST)
    )
    assert result.success
    key = dg.AssetKey("daily")
    records = instance.fetch_materializations(key, limit=1000).records
    latest = instance.get_latest_materialization_event(key)
    (entry,) = instance.get_asset_records([key])
    checks = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=1000)
    return {
        "events": [
            (r.dagster_event.event_type_value, r.dagster_event.partition)
            for r in instance.all_logs(result.run_id)
            if r.dagster_event and r.dagster_event.asset_key
        ],
        "partitions": sorted(instance.get_materialized_partitions(key)),
        "materializations": [
            (r.partition_key, r.asset_materialization.metadata["days"].value) for r in records
        ],
        "latest": latest.dagster_event.partition,
        "last_run_is_this_run": entry.asset_entry.last_run_id == result.run_id,
        "checks": sorted((c.status.value, c.partition) for c in checks),
        "summary_materialized": instance.get_latest_materialization_event(
            dg.AssetKey("summary")
        ).run_id
        == result.run_id,
    }


@pytest.fixture
def engines(monkeypatch) -> list[str]:
    """Every SQLite engine either event log opens (a spy: the engine is the real one)."""
    opened = []
    for module in (sqlite_event_log, storage):
        create = module.create_engine

        def counting(url, *args, create=create, **kwargs):
            opened.append(str(url))
            return create(url, *args, **kwargs)

        monkeypatch.setattr(module, "create_engine", counting)
    return opened


def test_batched_event_log_stores_what_dagsters_stores_with_few_connections(
    tmp_path, monkeypatch, engines
):
    for name, value in EVENT_BATCH_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "plain").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "plain")) as plain:
        assert type(plain.event_log_storage) is sqlite_event_log.SqliteEventLogStorage
        expected = stored(plain)
    plain_engines = len(engines)
    engines.clear()

    batched = persistent_instance(Settings(home=tmp_path / "cascade", _env_file=None))
    try:
        assert isinstance(batched.event_log_storage, BatchedSqliteEventLogStorage)
        actual = stored(batched)
    finally:
        batched.dispose()

    assert actual == expected
    assert len(expected["partitions"]) == 59 and expected["latest"] == "2025-02-28"
    assert expected["last_run_is_this_run"] and expected["summary_materialized"]
    # Dagster's: two engines per asset event (372 in all here); ours: the index's and the
    # run's, kept open for every event and batch of the run
    assert plain_engines > 4 * 59
    assert len(engines) <= 3, engines  # 3: the index's first, when Dagster creates it
    assert sorted({url.rsplit("/", 1)[1] for url in engines})[1:] == ["index.db"], engines
