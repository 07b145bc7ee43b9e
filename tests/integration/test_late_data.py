"""Late data reaches gold: the hourly tick reloads yesterday and rebuilds it down to the marts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from cascade.definitions import build_definitions
from cascade.demo.generator import entries_for_day
from cascade.demo.server import DemoServer
from cascade.demo.store import FileStore
from cascade.lake.connection import connect
from cascade.settings import Settings

YESTERDAY = date(2025, 3, 10)
TODAY = YESTERDAY + timedelta(days=1)

pytestmark = pytest.mark.timeout(600)


def gold_readings(settings: Settings, day: date) -> int:
    with connect(settings, read_only=True) as con:
        row = con.execute(
            "select sum(readings) from gold.mrt_daily_glycaemia where local_date = "
            f"'{day.isoformat()}'"
        ).fetchone()
    return row[0] or 0


def tick(definitions: dg.Definitions, instance: dg.DagsterInstance, hour: int) -> None:
    """Evaluate the hourly schedule at `hour` today and run what it requests, in process."""
    schedule = definitions.resolve_schedule_def("hourly_ingest")
    moment = datetime(TODAY.year, TODAY.month, TODAY.day, hour, 7, tzinfo=UTC)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=moment)
    requests = schedule.evaluate_tick(context).run_requests
    assert requests
    for request in requests:
        job = definitions.resolve_job_def(schedule.job_name)
        outcome = job.execute_in_process(
            instance=instance, tags=request.tags, partition_key=request.partition_key
        )
        assert outcome.success


def test_a_late_reading_for_yesterday_reaches_gold_on_the_next_tick(tmp_path):
    entries = entries_for_day(YESTERDAY) + entries_for_day(TODAY)
    late = entries_for_day(YESTERDAY)[100]
    on_time = [e for e in entries if e["_id"] != late["_id"]]
    with DemoServer() as server:
        server.store = FileStore({"entries": on_time})
        settings = Settings(
            home=tmp_path / ".cascade",
            nightscout_url=server.url,
            subject_id="demo",
            start_date="2025-03-01",
            _env_file=None,
        )
        definitions = build_definitions(settings)
        instance = dg.DagsterInstance.ephemeral()
        tick(definitions, instance, 10)
        before = gold_readings(settings, YESTERDAY)
        assert before > 0

        server.store = FileStore({"entries": entries})  # the uploader catches up
        tick(definitions, instance, 11)
    assert gold_readings(settings, YESTERDAY) == before + 1
