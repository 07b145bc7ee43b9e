"""Publishing the gold marts into PostgreSQL schema `marts`, each table swapped atomically."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import psycopg2
import pytest

from cascade.defs.publish import publish_marts
from cascade.demo.server import DemoServer
from cascade.lake.connection import connect
from cascade.pipeline import run_pipeline
from cascade.settings import GOLD_MARTS, Settings
from tests.support import PG_PASSWORD

pytestmark = [pytest.mark.pg, pytest.mark.timeout(900)]
DAY = date(2025, 6, 2)


def test_pipeline_publishes_every_mart_and_republishing_never_hides_a_table(
    local_settings: Settings, pg_database: str
):
    settings = Settings(
        **{**local_settings.model_dump(), "start_date": "2025-01-01", "marts_url": pg_database}
    )
    with DemoServer(now=datetime(2025, 7, 1, tzinfo=UTC)) as server:
        result = run_pipeline(settings, DAY, DAY, nightscout_url=server.url, subject_id="demo")
    assert result.success, result.failures
    assert "marts/published" in result.materialized
    assert PG_PASSWORD not in str(result.materialized["marts/published"])

    with connect(settings, read_only=True) as con:
        gold = {t: con.execute(f"select count(*) from gold.{t}").fetchone()[0] for t in GOLD_MARTS}
    reader = psycopg2.connect(pg_database)
    reader.autocommit = True
    with reader.cursor() as cur:
        for table, rows in gold.items():
            cur.execute(f"select count(*) from marts.{table}")
            assert cur.fetchone()[0] == rows, table

    errors, reads = [], []
    stop = threading.Event()

    def read_while_publishing() -> None:
        with reader.cursor() as cursor:
            while not stop.is_set():
                try:
                    cursor.execute("select count(*) from marts.mrt_daily_glycaemia")
                    reads.append(cursor.fetchone()[0])
                except psycopg2.Error as exc:
                    errors.append(str(exc))

    thread = threading.Thread(target=read_while_publishing)
    thread.start()
    try:
        for _ in range(3):
            assert publish_marts(settings)["mrt_daily_glycaemia"] == gold["mrt_daily_glycaemia"]
    finally:
        stop.set()
        thread.join(timeout=60)
        reader.close()
    assert not errors, errors[:3]
    assert reads and set(reads) == {gold["mrt_daily_glycaemia"]}
