"""Backfill a year (ingest and dbt) on PostgreSQL + S3 at concurrency 1, 2 and 4.

Also times the earlier design, one run per daily partition, on a sample of days and
extrapolates it to the year for the ratio. Targets: the year in <= 60 s at concurrency 4,
zero failures, and >= 10x faster than one run per partition.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import demo_site, scale_settings  # noqa: E402

from cascade.defs.runners import run_backfill  # noqa: E402

FIRST = date(2025, 1, 1)
LAST = date(2025, 12, 31)
SAMPLE_DAYS = 8


def backfill(concurrency: int, last: date = LAST, one_run_per_partition: bool = False):
    with tempfile.TemporaryDirectory() as tmp, scale_settings(Path(tmp) / ".cascade") as settings:
        settings = settings.model_copy(update={"start_date": FIRST.isoformat()})
        with demo_site() as url:
            return run_backfill(
                settings, FIRST, last, concurrency, url, "demo", one_run_per_partition
            )


def main() -> None:
    days = (LAST - FIRST).days + 1
    print(
        f"backfill of {days} days on PostgreSQL + S3 (target: <= 60 s at concurrency 4, "
        "0 failures, >= 10x faster than one run per partition)"
    )
    timings = {}
    for concurrency in (1, 2, 4):
        report = backfill(concurrency)
        timings[concurrency] = report.seconds
        print(f"  concurrency {concurrency}: {report.describe()} · failures {len(report.failures)}")
        for failure in report.failures:
            print(f"    {failure}")
    sample = backfill(1, FIRST + timedelta(days=SAMPLE_DAYS - 1), one_run_per_partition=True)
    per_partition = sample.seconds / SAMPLE_DAYS
    print(
        f"  one run per partition: {per_partition:.1f} s per day over {SAMPLE_DAYS} days "
        f"→ {per_partition * days:.0f} s for the year (extrapolated)"
    )
    print(
        f"  speed-up of concurrency 4 over one run per partition: "
        f"{per_partition * days / timings[4]:.1f}x"
    )


if __name__ == "__main__":
    main()
