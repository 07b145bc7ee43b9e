"""The hourly refresh of one site, end to end through Dagster, against its floor.

A demo site (`cascade demo-server`, its own process) and a local lake holding its last 14 days
(`nightscout_pipeline`, untimed). Then, timed, in the same run:
- refresh: the `nightscout_hourly` job in process, as the `hourly_ingest` schedule runs it
  (yesterday and today: fetch from the mark minus the look-back, dlt merge, dbt's one step);
- floor: the same hours over HTTP, DuckDB `read_json` into a DuckLake table and one
  daily-metrics query (what any pipeline must do at least).
Prints each run's seconds, the median and the ratio. Usage: `python benchmarks/hourly.py [RUNS]`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))

from common import demo_site, peak_memory_mib  # noqa: E402

from cascade.defs.jobs import HOURLY_JOB, PIPELINE_JOB  # noqa: E402
from cascade.defs.runners import run_pipeline  # noqa: E402
from cascade.lake import connect  # noqa: E402
from cascade.settings import Settings  # noqa: E402

LOOKBACK_H = 3


def floor(url: str, home: Path) -> float:
    """Fetch the look-back hours, read_json them into a DuckLake table, one daily query."""
    started = time.perf_counter()
    since = int((datetime.now(UTC) - timedelta(hours=LOOKBACK_H)).timestamp() * 1000)
    reply = requests.get(
        f"{url}/api/v1/entries.json", params={"find[date][$gte]": since, "count": 1000}, timeout=30
    )
    reply.raise_for_status()
    page = home / "page.json"
    page.write_bytes(reply.content)
    settings = Settings(home=home / ".floor", _env_file=None)
    with connect(settings) as con:
        con.execute(f"create or replace table raw.entries as select * from read_json('{page}')")
        con.execute(
            "select cast(to_timestamp(date / 1000) as date) as day, count(*), avg(sgv), "
            "100 * avg(case when sgv between 70 and 180 then 1 else 0 end) "
            "from raw.entries group by all"
        ).fetchall()
    return time.perf_counter() - started


def step_seconds(settings: Settings, run_id: str) -> str:
    """Each step's seconds in the run, from Dagster's own events."""
    import dagster as dg

    started, spans = {}, []
    with dg.DagsterInstance.local_temp(str(settings.home.absolute() / "dagster")) as instance:
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.is_step_start:
                started[event.step_key] = record.timestamp
            elif event.is_step_success or event.is_step_failure:
                spans.append(f"{event.step_key} {record.timestamp - started[event.step_key]:.1f}")
    return ", ".join(spans)


def main(runs: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp, demo_site() as url:
        home = Path(tmp)
        settings = Settings(home=home / ".cascade", _env_file=None)
        today = datetime.now(UTC).date()
        started = time.perf_counter()
        first = run_pipeline(
            settings, today - timedelta(days=13), today, job=PIPELINE_JOB, nightscout_url=url
        )
        assert first.success, first.failures
        print(f"set-up: 14 days through {PIPELINE_JOB} in {time.perf_counter() - started:.1f} s")
        refresh, floors = [], []
        for run in range(1, runs + 1):
            started = time.perf_counter()
            result = run_pipeline(
                settings, today - timedelta(days=1), today, job=HOURLY_JOB, nightscout_url=url
            )
            refresh.append(time.perf_counter() - started)
            assert result.success, result.failures
            floors.append(floor(url, home))
            print(
                f"run {run}: hourly refresh {refresh[-1]:.1f} s "
                f"({step_seconds(settings, result.run_id)}), floor {floors[-1]:.2f} s"
            )
        median, base = statistics.median(refresh), statistics.median(floors)
        print(
            f"hourly refresh of one site through Dagster: median {median:.1f} s "
            f"(target <= 5 s); floor {base:.2f} s; ratio {median / base:.0f}x (target <= 15x); "
            f"peak {peak_memory_mib():.0f} MiB"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
