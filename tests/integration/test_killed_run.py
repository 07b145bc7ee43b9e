"""A run killed mid-load leaves no partial table behind, and running it again completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cascade.demo.generator import entries_for_day
from cascade.demo.server import DemoServer
from cascade.lake.connection import connect
from cascade.settings import Settings

pytestmark = pytest.mark.timeout(600)
FIRST = date(2025, 2, 1)
DAYS = 30


def ingest_command(url: str) -> list[str]:
    cascade = Path(sys.executable).parent / "cascade"
    end = FIRST + timedelta(days=DAYS)
    return [
        str(cascade),
        "ingest",
        "--start",
        str(FIRST),
        "--end",
        str(end),
        "--url",
        url,
        "--subject",
        "demo",
    ]


def entry_count(settings: Settings) -> int:
    with connect(settings, read_only=True) as con:
        found = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw' and table_name = 'entries'"
        ).fetchone()[0]
        return con.execute("select count(*) from raw.entries").fetchone()[0] if found else 0


def test_killed_ingest_leaves_all_or_nothing_and_reruns(local_settings: Settings):
    env = {**os.environ, "CASCADE_HOME": str(local_settings.home)}
    expected = sum(len(entries_for_day(FIRST + timedelta(days=d))) for d in range(DAYS))
    with DemoServer(now=datetime(2025, 4, 1, tzinfo=UTC)) as server:
        child = subprocess.Popen(
            ingest_command(server.url),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # kill it once the lake exists and the load is under way
        deadline = time.monotonic() + 120
        while not local_settings.catalog_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.0)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL, "the ingest ended before it was killed"

        assert entry_count(local_settings) in (0, expected)  # a merge is all or nothing

        rerun = subprocess.run(
            ingest_command(server.url), env=env, capture_output=True, text=True, timeout=300
        )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert entry_count(local_settings) == expected
