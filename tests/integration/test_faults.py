"""Faults end, clearly: frozen S3 or a killed catalog connection mid-load ends the run within a
deadline, with one line, and leaves nothing partial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cascade.demo.server import DemoServer
from cascade.ingest import IngestError, ingest_site
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sources.nightscout.helpers import Window
from tests.conftest import _free_port, _wait_for_port, pg_execute
from tests.support import S3_KEY_ID, S3_SECRET, s3_client

DAY = date(2024, 3, 1)
START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(days=3))
DEADLINE_S = 6.0

pytestmark = pytest.mark.pg


@pytest.fixture
def own_moto():
    """A moto server of this test alone: it gets frozen."""
    port = _free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield process, f"http://127.0.0.1:{port}"
    finally:
        os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        process.wait(timeout=10)


def settings_for(pg_database: str, endpoint: str, tmp_path: Path) -> Settings:
    s3_client(endpoint).create_bucket(Bucket="lake")
    return Settings(
        home=tmp_path / ".cascade",
        catalog_url=pg_database,
        data_path="s3://lake/data",
        s3_endpoint=endpoint,
        s3_use_ssl=False,
        s3_access_key_id=S3_KEY_ID,
        s3_secret_access_key=S3_SECRET,
        _env_file=None,
    )


def raw_rows(settings: Settings) -> int:
    """Rows in the raw tables (dlt may have created them empty before the fault)."""
    with connect(settings, read_only=True) as con:
        tables = con.execute(
            "select table_name from information_schema.tables where table_catalog = "
            "'ducklake' and table_schema = 'raw' and table_name in "
            "('entries', 'treatments', 'devicestatus', 'profile')"
        ).fetchall()
        return sum(
            con.execute(f"select count(*) from ducklake.raw.{t}").fetchone()[0] for (t,) in tables
        )


def test_frozen_s3_mid_load_ends_within_the_deadline(pg_database, own_moto, tmp_path):
    moto, endpoint = own_moto
    settings = settings_for(pg_database, endpoint, tmp_path)
    frozen = []

    def freeze(collection: str, rows: int) -> None:
        if not frozen:
            os.kill(moto.pid, signal.SIGSTOP)
            frozen.append(time.monotonic())

    with (
        DemoServer(now=START + timedelta(days=30)) as server,
        pytest.raises(IngestError) as failure,
    ):
        ingest_site(settings, WINDOW, server.url, "demo", on_page=freeze, deadline_s=DEADLINE_S)
    took = time.monotonic() - frozen[0]
    message = str(failure.value)
    print(f"frozen S3 ended in {took:.1f} s: {message}")
    assert took < DEADLINE_S * 3
    assert "\n" not in message and S3_SECRET not in message
    assert "did not finish within" in message and "CASCADE_S3_ENDPOINT" in message

    os.kill(moto.pid, signal.SIGCONT)
    time.sleep(DEADLINE_S)  # the abandoned load thread wakes up and must commit nothing
    assert raw_rows(settings) == 0


def test_catalog_connections_killed_during_a_load_end_clearly_and_converge(
    scale_settings, pg_admin_url
):
    """Every catalog connection killed again and again while a load runs: the load either
    survives (DuckDB reconnects) or ends with one clear line, soon; a clean re-run then holds
    every record exactly once."""
    database = scale_settings.catalog.database
    kill_all = (
        "select pg_terminate_backend(pid) from pg_stat_activity "
        f"where datname = '{database}' and pid <> pg_backend_pid()"
    )
    stop = threading.Event()
    started = threading.Event()
    kills = []

    def killer() -> None:
        started.wait()
        until = time.monotonic() + 3 * DEADLINE_S
        while time.monotonic() < until and not stop.wait(0.25):
            kills.extend(pg_execute(pg_admin_url, kill_all))

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    began = time.monotonic()
    with DemoServer(now=START + timedelta(days=30)) as server:
        try:
            ingest_site(
                scale_settings,
                WINDOW,
                server.url,
                "demo",
                on_page=lambda collection, rows: started.set(),
                deadline_s=DEADLINE_S,
            )
            outcome = "survived"
        except IngestError as failure:
            outcome = str(failure)
            assert "\n" not in outcome
            assert (
                "PipelineStepFailed" not in outcome and "Pipeline execution failed" not in outcome
            )
        finally:
            stop.set()
            thread.join()
        print(f"{len(kills)} connections killed; {time.monotonic() - began:.1f} s: {outcome}")
        assert kills, "the test killed no catalog connection"
        assert time.monotonic() - began < 60

        again = ingest_site(scale_settings, WINDOW, server.url, "demo")
    with connect(scale_settings, read_only=True) as con:
        for table, fetched in again.fetched_by_collection.items():
            rows, keys = con.execute(
                f"select count(*), count(distinct record_key) from ducklake.raw.{table}"
            ).fetchone()
            assert rows == keys == fetched, table
