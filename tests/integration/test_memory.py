"""CASCADE_DUCKDB_MEMORY_LIMIT reaches every DuckDB cascade opens, and each spills in its own
folder under CASCADE_HOME/tmp (DuckDB's default, `.tmp` in the working directory, is one folder
for every process, and two instances there write the same file names)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb

from cascade.lake.connection import connect, spill_dir_prefix
from cascade.settings import Settings
from cascade.transform import DBT_EXECUTABLE, dbt_args, dbt_session, dbt_spill_dir


def setting(con, name: str) -> str:
    return con.execute(f"select current_setting('{name}')").fetchone()[0]


def test_lake_connections_take_the_limit_and_spill_in_folders_of_their_own(
    local_settings: Settings,
):
    settings = local_settings.model_copy(update={"duckdb_memory_limit": "64MB"})
    with connect(settings) as first, connect(settings) as second:
        assert setting(first, "memory_limit") == setting(second, "memory_limit") == "61.0 MiB"
        folders = {Path(setting(first, "temp_directory")), Path(setting(second, "temp_directory"))}
        assert len(folders) == 2
        assert all(f.parent == settings.work_dir for f in folders)
        assert all(f.name.startswith(spill_dir_prefix()) for f in folders)

        # three times the limit: DuckDB must spill, into this connection's folder only
        first.execute(
            "create table memory.main.big as "
            "select range as i, md5(range::varchar) || md5((range + 1)::varchar) as s "
            "from range(2500000)"
        )
        spilled = Path(setting(first, "temp_directory"))
        assert any(spilled.iterdir())
        assert not Path(setting(second, "temp_directory")).exists()
        assert first.execute("select count(distinct s) from memory.main.big").fetchone()[0] == (
            2_500_000
        )
    assert not spilled.exists()  # DuckDB removes its folder at close


def test_without_a_limit_duckdb_keeps_its_default(local_settings: Settings):
    settings = local_settings.model_copy(update={"duckdb_memory_limit": None})
    with connect(settings) as con, duckdb.connect() as plain:
        assert setting(con, "memory_limit") == setting(plain, "memory_limit")


def show(settings: Settings, sql: str) -> tuple[dict, list[dict]]:
    """`dbt show --inline sql` with every build's arguments (less --exclude-resource-type, which
    dbt show lacks) inside dbt_session: the one row and dbt's JSON log events."""
    args = dbt_args(settings.model_copy(update={"dbt_unit_tests": True}), command="show")
    with dbt_session(settings):
        shown = subprocess.run(
            [
                str(DBT_EXECUTABLE),
                *args,
                "--inline",
                sql,
                "--output",
                "json",
                "--log-format",
                "json",
            ],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    events = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
    (preview,) = [e["data"]["preview"] for e in events if "preview" in e["data"]]
    (row,) = json.loads(preview) if isinstance(preview, str) else preview
    return row, events


def test_dbt_takes_the_limit_and_the_lakes_spill_folder(local_settings: Settings):
    settings = local_settings.model_copy(update={"duckdb_memory_limit": "300MB"})
    sql = (
        "select current_setting('memory_limit') as memory_limit, "
        "current_setting('temp_directory') as temp_directory"
    )
    row, _ = show(settings, sql)
    assert row["memory_limit"] == "286.1 MiB"
    assert Path(row["temp_directory"]) == dbt_spill_dir(settings)

    # a killed build's spilled blocks: the next build clears them, and finds the same profile,
    # so dbt reads its partial-parse state instead of parsing the whole project again
    leftover = dbt_spill_dir(settings) / "duckdb_temp_storage_DEFAULT-0.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"\0" * 1024)
    _, events = show(settings, sql)
    assert not leftover.parent.exists()
    assert "UnableToPartialParse" not in {e["info"]["name"] for e in events}
