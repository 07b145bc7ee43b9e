"""`cascade maintain` on real lakes: fewer files, identical results, safe beside a running load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from cascade.cli.common import parse_duration
from cascade.cli.ops import maintain
from cascade.demo.generator import entries_for_day
from cascade.ingest import ingest_file
from cascade.lake.connection import connect, spill_dir_prefix
from cascade.lake.health import HealthOptions, files
from cascade.lake.lock import writer_lock
from cascade.lake.maintenance import footprint, run_maintenance
from cascade.settings import Settings

FIRST_DAY = date(2024, 3, 1)
DAILY_LOADS = 30


def day_file(folder: Path, day: date) -> Path:
    """One day of demo readings as a Nightscout JSON export."""
    path = folder / f"{day}.json"
    path.write_text(json.dumps({"entries": entries_for_day(day)}))
    return path


def expected_ids(days: range) -> set[str]:
    return {e["_id"] for d in days for e in entries_for_day(FIRST_DAY + timedelta(days=d))}


def fingerprint(settings: Settings) -> tuple:
    """Row counts of every raw table and an order-free checksum of every raw.entries row."""
    with connect(settings, read_only=True) as con:
        counts = con.execute(
            "select table_name from duckdb_tables() where database_name = 'ducklake' "
            "and schema_name = 'raw' order by 1"
        ).fetchall()
        rows = {
            name: con.execute(f'select count(*) from raw."{name}"').fetchone()[0]
            for (name,) in counts
        }
        checksum = con.execute("select sum(hash(e)) from raw.entries e").fetchone()[0]
    return rows, checksum


@pytest.mark.slow  # 30 dlt runs: ~45 s on an idle machine
def test_maintenance_compacts_daily_loads_and_keeps_every_result(
    local_settings: Settings, tmp_path: Path
):
    for offset in range(DAILY_LOADS):
        ingest_file(local_settings, day_file(tmp_path, FIRST_DAY + timedelta(days=offset)))
    with connect(local_settings) as con:
        # what a load killed between creating and dropping its staging schema leaves
        con.execute("create schema raw_staging_0badc0ffee00")
        con.execute("create table raw_staging_0badc0ffee00.entries as from range(100)")
        crowded = files(con, "__ducklake_metadata_ducklake", HealthOptions())
    before = fingerprint(local_settings)
    assert not crowded[0] and "raw.entries" in crowded[1]
    assert before[0]["entries"] == len(expected_ids(range(DAILY_LOADS)))

    report = run_maintenance(local_settings, older_than=timedelta(0))
    print(report.describe())

    assert fingerprint(local_settings) == before
    assert report.dropped_schemas == ["raw_staging_0badc0ffee00"]
    assert report.before.data_files >= DAILY_LOADS
    assert report.after.data_files <= report.before.data_files // 4
    assert report.after.snapshots < report.before.snapshots // 10
    assert report.after.stored_files < report.before.stored_files
    parquet = list((local_settings.home / "lake").rglob("*.parquet"))
    assert len(parquet) == report.after.stored_files
    with connect(local_settings, read_only=True) as con:
        ok, detail, data = files(con, "__ducklake_metadata_ducklake", HealthOptions())
        assert ok, detail
        assert data["tables"]["raw.entries"]["files"] == 1
        # expired snapshots are gone: time travel to them is allowed to fail
        with pytest.raises(duckdb.Error):
            con.execute("select count(*) from raw.entries at (version => 3)").fetchall()

    result = CliRunner().invoke(
        maintain, ["--older-than", "0s"], env={"CASCADE_HOME": str(local_settings.home)}
    )
    assert result.exit_code == 0, result.output
    assert f"data files {report.after.data_files}" in result.stdout
    assert fingerprint(local_settings) == before


def test_maintenance_takes_the_local_writer_lock(local_settings: Settings, tmp_path: Path):
    _maintain_beside_a_load(local_settings, tmp_path, timedelta(0))
    reports = []
    with writer_lock(local_settings):
        worker = threading.Thread(
            target=lambda: reports.append(run_maintenance(local_settings, timedelta(0)))
        )
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive()
    worker.join(timeout=60)
    assert reports[0].lock_wait_seconds >= 0.5


@pytest.mark.pg
def test_maintenance_runs_beside_loads_on_postgresql(scale_settings: Settings, tmp_path: Path):
    _maintain_beside_a_load(scale_settings, tmp_path, timedelta(days=7))


def _maintain_beside_a_load(settings: Settings, folder: Path, older_than: timedelta) -> None:
    """Three days loaded; then days 2..6 load (day 2 again) while maintenance runs twice."""
    for offset in range(3):
        ingest_file(settings, day_file(folder, FIRST_DAY + timedelta(days=offset)))
    errors: list[BaseException] = []
    reports = []

    def guarded(work) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)

        return threading.Thread(target=run)

    def loads() -> None:
        for offset in range(2, 7):
            ingest_file(settings, day_file(folder, FIRST_DAY + timedelta(days=offset)))

    def maintenance() -> None:
        for _ in range(2):
            reports.append(run_maintenance(settings, older_than))

    loader, maintainer = guarded(loads), guarded(maintenance)
    loader.start()
    time.sleep(1.0)
    maintainer.start()
    loader.join(timeout=240)
    maintainer.join(timeout=240)
    assert errors == []
    assert len(reports) == 2
    expected = len(expected_ids(range(7)))
    with connect(settings, read_only=True) as con:
        rows, ids = con.execute("select count(*), count(distinct _id) from raw.entries").fetchone()
        assert (rows, ids) == (expected, expected)
        live = footprint(con, settings)
    final = run_maintenance(settings, timedelta(0))
    assert final.after.data_files <= live.data_files
    with connect(settings, read_only=True) as con:
        assert con.execute("select count(*) from raw.entries").fetchone()[0] == expected


def test_maintain_refuses_a_missing_lake_and_a_bad_duration(local_settings: Settings):
    env = {"CASCADE_HOME": str(local_settings.home)}
    result = CliRunner().invoke(maintain, [], env=env)
    assert result.exit_code == 1 and "no lake at" in result.output
    assert not local_settings.home.exists()
    result = CliRunner().invoke(maintain, ["--older-than", "7x"], env=env)
    assert result.exit_code == 2 and "90s, 30m, 12h, 7d or 2w" in result.output
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("1.5h") == timedelta(minutes=90)


pytestmark = pytest.mark.timeout(300)


def test_maintain_removes_leftovers_of_killed_loads_and_says_so(local_settings: Settings):
    with connect(local_settings) as con:
        con.execute("create schema raw_staging_0badc0ffee00")
        con.execute("create table raw.t as from range(5)")
    dead = local_settings.work_dir / "cascade-dlt-killed"
    (dead / "pipelines").mkdir(parents=True)
    with subprocess.Popen([sys.executable, "-c", "pass"]) as ended:
        ended.wait()
    spill = (
        local_settings.work_dir / f"{spill_dir_prefix(ended.pid)}0badc0ffee00"
    )  # its process ended
    idle = local_settings.work_dir / f"{spill_dir_prefix()}0badc0ffee00"  # alive, idle
    for folder in (spill, idle):
        (folder / "duckdb_temp_storage_DEFAULT-0.tmp").parent.mkdir()
        (folder / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"x")
    old = time.time() - 7 * 3600
    for path in (dead / "pipelines", dead, *(p for f in (spill, idle) for p in (*f.iterdir(), f))):
        os.utime(path, (old, old))
    running = local_settings.work_dir / "cascade-dlt-running"
    running.mkdir()

    result = CliRunner().invoke(maintain, env={"CASCADE_HOME": str(local_settings.home)})
    assert result.exit_code == 0, result.output
    assert not dead.exists() and not spill.exists()
    assert running.exists() and idle.exists()
    assert "staging schemas dropped: raw_staging_0badc0ffee00" in result.stdout
    assert f"working folders removed: {dead}, {spill}" in result.stdout
    # the retention is spelled out, so a growing count of stored files reads right
    assert "kept for time travel until they are 7 d old" in result.stdout
    assert "merged" in result.stdout
