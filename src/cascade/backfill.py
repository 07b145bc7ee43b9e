"""Backfill a range of daily partitions as a few ranged runs, several at once.

Each ranged run is the `nightscout_pipeline` job executed in its own process (a fresh DuckDB,
fresh connections), so runs on PostgreSQL really run in parallel; on the local profile they
queue on the writer lock.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, timedelta

from cascade.settings import Settings

MAX_PARTITIONS_PER_RUN = 92


@dataclass
class ChunkResult:
    """One ranged run: its days, success, rows fetched, failures, seconds."""

    first: date
    last: date
    success: bool
    rows: int
    failures: list[str]
    seconds: float


@dataclass
class BackfillReport:
    """All ranged runs of a backfill."""

    chunks: list[ChunkResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)

    @property
    def failures(self) -> list[str]:
        return [f"{c.first}..{c.last}: {f}" for c in self.chunks for f in c.failures]

    def describe(self) -> str:
        failed = sum(not c.success for c in self.chunks)
        rate = self.rows / self.seconds if self.seconds else 0
        return (
            f"{len(self.chunks)} runs ({failed} failed) · {self.rows:,} rows fetched · "
            f"{self.seconds:.1f} s · {rate:,.0f} rows/s"
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


def _run_chunk(settings_json: str, first: date, last: date, url: str, subject: str | None):
    from cascade.pipeline import run_pipeline

    settings = Settings(**json.loads(settings_json))
    started = time.perf_counter()
    result = run_pipeline(
        settings, first, last, nightscout_url=url, subject_id=subject, log_level="WARNING"
    )
    rows = sum(
        meta.get("rows_fetched", 0)
        for key, meta in result.materialized.items()
        if key.startswith("raw/")
    )
    return ChunkResult(
        first, last, result.success, rows, result.failures, time.perf_counter() - started
    )


def run_backfill(
    settings: Settings,
    first: date,
    last: date,
    concurrency: int,
    url: str,
    subject: str | None = None,
    partitions_per_run: int = MAX_PARTITIONS_PER_RUN,
) -> BackfillReport:
    """Materialise first..last in ranged runs, `concurrency` processes at a time."""
    from cascade.defs.transform import dbt_project

    dbt_project()  # parse once here, not in every process at the same time
    started = time.perf_counter()
    report = BackfillReport()
    ranges = list(chunks(first, last, concurrency, partitions_per_run))
    payload = _settings_json(settings)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, concurrency), mp_context=context) as pool:
        futures = [pool.submit(_run_chunk, payload, a, b, url, subject) for a, b in ranges]
        for future in as_completed(futures):
            report.chunks.append(future.result())
    report.chunks.sort(key=lambda c: c.first)
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
