"""Counts are true under concurrency: N processes ingesting one window claim each row once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest

from cascade.demo.server import DemoServer
from cascade.lake.connection import connect
from cascade.settings import Settings

DAY = date(2024, 3, 1)
PROCESSES = 4


def scale_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    return env | {
        "CASCADE_HOME": str(settings.home),
        "CASCADE_CATALOG_URL": settings.catalog_url.get_secret_value(),
        "CASCADE_DATA_PATH": settings.data_path,
        "CASCADE_S3_ENDPOINT": settings.s3_endpoint,
        "CASCADE_S3_USE_SSL": "false",
        "CASCADE_S3_ACCESS_KEY_ID": settings.s3_access_key_id.get_secret_value(),
        "CASCADE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),
        "COLUMNS": "200",
    }


@pytest.mark.pg
def test_concurrent_ingests_of_one_site_count_each_row_once(scale_settings: Settings):
    with connect(scale_settings):
        pass  # the lake exists before the writers race for it
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    end = start + timedelta(days=2)
    with DemoServer(now=start + timedelta(days=30)) as server:
        command = [
            sys.executable,
            "-m",
            "cascade.cli",
            "ingest",
            "--url",
            server.url,
            "--subject",
            "demo",
            "--start",
            start.isoformat(),
            "--end",
            end.isoformat(),
        ]
        workers = [
            subprocess.Popen(
                command,
                env=scale_env(scale_settings),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(PROCESSES)
        ]
        outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (_stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    summaries = [re.search(r"inserted ([\d,]+) · updated ([\d,]+)", o) for o, _ in outputs]
    assert all(summaries), outputs
    inserted = sum(int(m.group(1).replace(",", "")) for m in summaries)
    assert all("commit retries" in o for o, _ in outputs)

    with connect(scale_settings, read_only=True) as con:
        rows = sum(
            con.execute(f"select count(*) from ducklake.raw.{table}").fetchone()[0]
            for table in ("entries", "treatments", "devicestatus", "profile")
        )
        unique = sum(
            con.execute(
                f"select count(distinct (subject_id, record_key)) from ducklake.raw.{table}"
            ).fetchone()[0]
            for (table,) in con.execute(
                "select table_name from information_schema.tables where table_catalog = "
                "'ducklake' and table_schema = 'raw' and table_name not like '\\_dlt%' escape '\\'"
            ).fetchall()
        )
    assert rows == unique, "the merge kept duplicate keys"
    assert inserted == unique
