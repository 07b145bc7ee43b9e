"""One year of one site, `cascade backfill` against its floor, on the local profile.

In the same run, against the same demo site (`cascade demo-server`, its own process):
- backfill: `run_backfill` as `cascade backfill --start ... --end ...` runs it (ranged
  ingestion runs of up to 92 days, then one dbt run over the year), on a fresh local lake;
- floor: the year's readings over HTTP (one request a month), DuckDB `read_json` of them into
  a DuckLake table and one daily-metrics query: what any pipeline must do at least.
Prints both, and the ratio (target <= 5x). Usage: `python benchmarks/year.py`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))

from common import demo_site, peak_memory_mib  # noqa: E402

from cascade.defs.runners import run_backfill  # noqa: E402
from cascade.lake import connect  # noqa: E402
from cascade.settings import Settings  # noqa: E402

YEAR = 2025


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def floor(url: str, home: Path) -> tuple[float, int]:
    """Fetch the year's entries month by month, read_json them into DuckLake, one daily query."""
    started = time.perf_counter()
    pages = []
    for month in range(1, 13):
        low = date(YEAR, month, 1)
        high = date(YEAR + (month == 12), month % 12 + 1, 1)
        reply = requests.get(
            f"{url}/api/v1/entries.json",
            params={"find[date][$gte]": _ms(low), "find[date][$lt]": _ms(high), "count": 100_000},
            timeout=60,
        )
        reply.raise_for_status()
        page = home / f"entries-{month:02}.json"
        page.write_bytes(reply.content)
        pages.append(str(page))
    settings = Settings(home=home / ".floor", _env_file=None)
    with connect(settings) as con:
        con.execute(f"create or replace table raw.entries as select * from read_json({pages})")
        days = con.execute(
            "select cast(to_timestamp(date / 1000) as date) as day, count(*), avg(sgv), "
            "100 * avg(case when sgv between 70 and 180 then 1 else 0 end) "
            "from raw.entries group by all"
        ).fetchall()
        readings = con.execute("select count(*) from raw.entries").fetchone()[0]
    assert len(days) >= 365, len(days)
    return time.perf_counter() - started, readings


def main() -> None:
    first, last = date(YEAR, 1, 1), date(YEAR, 12, 31)
    with tempfile.TemporaryDirectory() as tmp, demo_site() as url:
        home = Path(tmp)
        base, readings = floor(url, home)
        settings = Settings(home=home / ".cascade", start_date=first.isoformat(), _env_file=None)
        report = run_backfill(settings, first, last, 1, url, "demo")
        assert not report.failures, report.failures
        print(f"floor: {readings} readings fetched, loaded and summarised in {base:.1f} s")
        print(f"cascade backfill: {report.describe()}")
        print(
            f"one year of one site: backfill {report.seconds:.1f} s, floor {base:.1f} s, "
            f"ratio {report.seconds / base:.1f}x (target <= 5x); "
            f"peak memory of this process {peak_memory_mib():.0f} MiB"
        )


if __name__ == "__main__":
    main()
