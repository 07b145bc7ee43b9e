"""Backfill a range of daily partitions: parallel ranged ingestion, then one dbt build.

The raw tables of a range load as a few ranged runs of the ingestion job, each in its own
process (a fresh DuckDB, fresh connections), `concurrency` at a time: on PostgreSQL they run in
parallel, on the local profile they queue on the writer lock. dbt then builds the whole range in
one run of the refine job, since its incremental models rebuild a window at once and dbt
builds on one lake take turns anyway. This is what Dagster's own backfill does with the assets'
backfill policies (ingestion: ranges of 92 days; dbt: a single run).
`one_run_per_partition` instead runs the whole pipeline once per day: the earlier design,
kept to measure against.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

from cascade.settings import Settings

MAX_PARTITIONS_PER_RUN = 92


@dataclass
class RunSummary:
    """One run of a backfill: its job, days, success, rows fetched, failures, seconds."""

    job: str
    first: date
    last: date
    success: bool
    rows: int
    failures: list[str]
    seconds: float
    commit_retries: int = 0


@dataclass
class BackfillReport:
    """All runs of a backfill."""

    runs: list[RunSummary] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.runs)

    @property
    def failures(self) -> list[str]:
        return [f"{r.job} {r.first}..{r.last}: {f}" for r in self.runs for f in r.failures]

    @property
    def commit_retries(self) -> int:
        return sum(r.commit_retries for r in self.runs)

    def describe(self) -> str:
        failed = sum(not r.success for r in self.runs)
        rate = self.rows / self.seconds if self.seconds else 0
        return (
            f"{len(self.runs)} runs ({failed} failed) · {self.rows:,} rows fetched · "
            f"{self.seconds:.1f} s · {rate:,.0f} rows/s · {self.commit_retries} commit retries"
        )


def chunks(first: date, last: date, runs: int, max_per_run: int = MAX_PARTITIONS_PER_RUN):
    """Split first..last (inclusive) into at least `runs` contiguous (first, last) ranges."""
    days = (last - first).days + 1
    size = min(max_per_run, max(1, math.ceil(days / max(runs, 1))))
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=size - 1))
        yield start, end
        start = end + timedelta(days=1)


def _run(settings_json: str, job: str, first: date, last: date, url: str, subject: str | None):
    from cascade.pipeline import run_pipeline

    settings = Settings(**json.loads(settings_json))
    started = time.perf_counter()
    result = run_pipeline(
        settings, first, last, job=job, nightscout_url=url, subject_id=subject, log_level="WARNING"
    )
    raw = [meta for key, meta in result.materialized.items() if key.startswith("raw/")]
    return RunSummary(
        job,
        first,
        last,
        result.success,
        sum(meta.get("rows_fetched", 0) for meta in raw),
        result.failures,
        time.perf_counter() - started,
        # the multi-asset reports its run's retries on each of its tables
        max((meta.get("commit_retries", 0) for meta in raw), default=0),
    )


def run_backfill(
    settings: Settings,
    first: date,
    last: date,
    concurrency: int,
    url: str,
    subject: str | None = None,
    one_run_per_partition: bool = False,
) -> BackfillReport:
    """Materialise first..last: ranged ingestion runs `concurrency` at a time, then dbt once."""
    from cascade.defs.build import INGEST_JOB, PIPELINE_JOB, REFINE_JOB
    from cascade.defs.transform import dbt_project

    dbt_project()  # parse once here, not in every process at the same time
    started = time.perf_counter()
    report = BackfillReport()
    payload = _settings_json(settings)
    context = multiprocessing.get_context("spawn")
    if one_run_per_partition:
        phases = [[(PIPELINE_JOB, a, b) for a, b in chunks(first, last, 0, 1)]]
    else:
        phases = [
            [(INGEST_JOB, a, b) for a, b in chunks(first, last, concurrency)],
            [(REFINE_JOB, first, last)],
        ]
    with ProcessPoolExecutor(max_workers=max(1, concurrency), mp_context=context) as pool:
        for phase in phases:
            futures = [pool.submit(_run, payload, job, a, b, url, subject) for job, a, b in phase]
            report.runs.extend(future.result() for future in futures)
            if report.failures:
                break  # dbt over a range whose raw data failed to load would mislead
    report.seconds = time.perf_counter() - started
    return report


def _settings_json(settings: Settings) -> str:
    """Settings with secrets in clear, to hand to a child process (never printed)."""
    values = {
        name: value.get_secret_value() if hasattr(value, "get_secret_value") else value
        for name, value in settings
        if value is not None
    }
    return json.dumps(values, default=str)
